"""REST API: the pairs an evaluation got wrong, and a model's audits."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response

from annotation.models import CuratedDataset, Round
from rewardmodels.access import RewardModelView
from rewardmodels.evaluation import audits
from rewardmodels.evaluation.forms import WrongPairsForm
from rewardmodels.evaluation.selectors import (
    evaluation_pairs_project,
    evaluation_wrong_pairs,
    wrong_pairs_filtered,
)
from rewardmodels.evaluation.serializers import (
    AuditRequestSerializer,
    AuditSerializer,
    WrongPairSerializer,
)
from rewardmodels.formats import RowsRejected
from rewardmodels.models import EvaluationRun
from rewardmodels.pages import job_for


class EvaluationNotSucceeded(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "unfinished"


def _choices(field: str) -> list[str]:
    return [value for value, _ in WrongPairsForm.base_fields[field].choices if value]


class EvaluationWrongPairs(generics.ListAPIView):
    """The pairs an evaluation got wrong, as its page lists them: the most confident mistake
    first, filtered as the page filters them, for those who may see the page."""

    serializer_class = WrongPairSerializer
    pairs_project: int | None = None  # whose review pages the pairs link to (get_queryset)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "difficulty",
                str,
                enum=_choices("difficulty"),
                description="Only pairs of this difficulty (`unknown`: not known)",
            ),
            OpenApiParameter(
                "longer",
                str,
                enum=_choices("longer"),
                description="Only pairs whose chosen response was (yes) or was not (no) the "
                "longer one",
            ),
        ]
    )
    def get(self, request, *args, **kwargs):
        """The pairs the evaluation got wrong, the most confident mistake first (the rejected
        response's reward furthest above the chosen one's). 400 for a filter that is not
        valid, naming it; 409 until the evaluation has succeeded; 404 when it kept no results
        per pair, as for an evaluation you may not see."""
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> list[dict]:
        evaluation = job_for(self.request, EvaluationRun, self.kwargs["pk"])
        form = WrongPairsForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        if evaluation.status == EvaluationRun.Status.FAILED:
            raise EvaluationNotSucceeded("This evaluation failed: it has no results.")
        if evaluation.status != EvaluationRun.Status.SUCCEEDED:
            raise EvaluationNotSucceeded(
                f"This evaluation is {evaluation.get_status_display().lower()}: the pairs the "
                "model got wrong are listed once it has succeeded."
            )
        wrong = evaluation_wrong_pairs(evaluation=evaluation)
        if wrong is None:  # as the evaluation's page says it
            raise NotFound(
                "This evaluation's results per pair are no longer there."
                if evaluation.pair_results_file
                else "Results per pair were not kept for evaluations made before they were "
                "recorded: evaluate again to see the pairs the model got wrong."
            )
        self.pairs_project = evaluation_pairs_project(evaluation=evaluation)
        return wrong_pairs_filtered(wrong, **form.filters())

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "pairs_project": self.pairs_project}


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
