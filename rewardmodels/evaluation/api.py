"""REST API: a model's audits."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from annotation.models import CuratedDataset, Round
from rewardmodels.access import RewardModelView
from rewardmodels.evaluation import audits
from rewardmodels.evaluation.serializers import AuditRequestSerializer, AuditSerializer
from rewardmodels.formats import RowsRejected


class ModelAudit(RewardModelView):
    """What a policy could exploit in the model: its audits, and a new one."""

    @extend_schema(responses=AuditSerializer(many=True))
    def get(self, request, key: str):
        """The model's audits, newest first, each with its figures and what it holds back."""
        reward_model = self.get_reward_model()
        audits = reward_model.audits.select_related("dataset", "round", "reward_model__project")
        return Response(AuditSerializer(audits.order_by("-pk"), many=True).data)

    @extend_schema(request=AuditRequestSerializer, responses={201: AuditSerializer})
    def post(self, request, key: str):
        """Queue an audit on the scoring queue: {dataset: NAME@vN} (its test split), {round:
        NAME} (its held-out pairs) or a multipart `pairs` file; `probes` to run fewer."""
        reward_model = self.get_reward_model()
        payload = AuditRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        project = reward_model.project_id
        dataset = round_ = None
        if data.get("dataset"):
            dataset = CuratedDataset.objects.filter(
                identifier=data["dataset"], project_id=project
            ).first()
            if dataset is None:
                raise NotFound(f"No dataset version {data['dataset']!r} in the model's project.")
        if data.get("round"):
            round_ = Round.objects.filter(name=data["round"], project_id=project).first()
            if round_ is None:
                raise NotFound(f"No round {data['round']!r} in the model's project.")
        probes = [name for item in data["probes"] for name in item.split(",")]
        try:
            audit = audits.audit_create(
                reward_model=reward_model, user=request.user, dataset=dataset, round_=round_,
                upload=data.get("pairs"), fmt=data["format"], probes=probes,
            )  # fmt: skip
        except RowsRejected as exc:
            return Response({"detail": f"Nothing was queued: {exc}"}, status=400)
        return Response(AuditSerializer(audit).data, status=status.HTTP_201_CREATED)
