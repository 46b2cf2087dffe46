from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin

from annotation.accounts.tokens import revoke_token
from annotation.models import (
    Adjudication,
    ApiToken,
    Assignment,
    ConsistencyCheck,
    CuratedDataset,
    Label,
    Membership,
    Pair,
    PairConsensus,
    Project,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "annotators_per_pair", "allow_ties", "ask_strength", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    autocomplete_fields = ["user", "project"]


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "source", "slots_taken", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id"]
    readonly_fields = ["slots_taken"]
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["pair", "annotator", "left", "state", "issued_at", "expires_at"]
    list_filter = ["state"]
    raw_id_fields = ["pair"]
    show_full_result_count = False


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["pair", "author_name", "choice", "strength", "shown_left", "created_at"]
    list_filter = ["choice", "source"]
    raw_id_fields = ["pair", "assignment"]
    show_full_result_count = False


@admin.register(PairConsensus)
class PairConsensusAdmin(admin.ModelAdmin):
    list_display = ["pair", "votes_a", "votes_b", "votes_tie", "winner", "difficulty", "margin"]
    list_filter = ["difficulty", "contested", "adjudicated"]
    raw_id_fields = ["pair"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False  # derived from labels; it follows them


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["pair", "choice", "decided_by", "decided_at"]
    raw_id_fields = ["pair"]


@admin.register(ConsistencyCheck)
class ConsistencyCheckAdmin(admin.ModelAdmin):
    list_display = ["label", "choice", "shown_left", "created_at"]
    raw_id_fields = ["label", "assignment"]


@admin.register(CuratedDataset)
class CuratedDatasetAdmin(admin.ModelAdmin):
    list_display = ["identifier", "project", "n_rows", "n_train", "n_test", "created_at"]
    list_filter = ["project"]

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable


# Single sign-on's providers come from OIDC_PROVIDERS only (annotation/accounts/sso.py): the
# admin's pages for providers kept in the database would change nothing and show secrets, and
# no provider's tokens are kept. People's links to their providers stay (Social accounts).
admin.site.unregister(SocialApp)
admin.site.unregister(SocialToken)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """People's API tokens, to look at and revoke (through the service, which logs it). They
    are made on the account page or with createtoken, the one place their secret is shown."""

    list_display = ["name", "user", "created", "last_used_at", "expiry"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user"]
    fields = ["name", "user", "created", "last_used_at", "expiry"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        revoke_token(request.user, obj.pk)

    def delete_queryset(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            revoke_token(request.user, pk)
