"""REST API for one's own API tokens: list them, make one (its secret in that answer only),
revoke one."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.accounts.tokens import NAME_MAX, create_token, revoke_token, tokens_of
from annotation.models import ApiToken

TOKEN_MAKES_NO_TOKEN = (
    "A token cannot make another token (a leaked one would then never run out): make it on "
    "your account page, signed in, or with `manage.py createtoken`."
)


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret, which is not stored."""

    expiry = serializers.DateTimeField(read_only=True, help_text="null: never expires")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "created", "last_used_at", "expiry"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX, help_text="What the token is for, e.g. ci")
    never_expires = serializers.BooleanField(
        default=False, help_text="Admins only; otherwise it expires after API_TOKEN_DAYS days"
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The secret: shown in this answer only, never again"
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenList(generics.ListAPIView):
    """Your API tokens, expired ones too, the newest first; POST makes one."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return tokens_of(self.request.user)

    @extend_schema(
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
        description="Make a token for yourself, signed in (not with a token). It expires after "
        f"API_TOKEN_DAYS days (now {settings.API_TOKEN_DAYS}); admins may make one that "
        "never expires. The answer's `token` is the secret, shown only there.",
    )
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(TOKEN_MAKES_NO_TOKEN)
        wanted = ApiTokenCreateSerializer(data=request.data)
        wanted.is_valid(raise_exception=True)
        row, secret = create_token(
            request.user,
            wanted.validated_data["name"],
            expires=not wanted.validated_data["never_expires"],
        )
        row.token = secret
        answer = Response(ApiTokenCreatedSerializer(row).data, status=status.HTTP_201_CREATED)
        answer["Cache-Control"] = "no-store"
        return answer


class ApiTokenDetail(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Revoked: the token no longer works")},
        description="Revoke one of your tokens (admins: anyone's). It stops working at once; "
        "a token may revoke itself.",
    )
    def delete(self, request, pk: int):
        try:
            revoke_token(request.user, pk)
        except ApiToken.DoesNotExist:
            raise NotFound("No such token of yours.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)
