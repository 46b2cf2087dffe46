"""REST API for LLM judges and judging jobs, with the pages' permissions: admins configure
judges and every lead may read them (never their keys); a project's leads run, follow and
cancel its judging jobs."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from annotation.access import IsProjectLead, ProjectScopedView, user_is_admin
from annotation.judges import services as judges
from annotation.models import Judge, JudgingJob, Membership


class JudgeSerializer(serializers.ModelSerializer):
    """A judge as the API shows it: `api_key` is write-only and never comes back;
    `key_source` says where the workers get the key."""

    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=True,
        help_text="Stored encrypted; never returned. Or name api_key_env instead. Changing "
        "base_url or provider removes a stored key unless a new one comes with the change.",
    )  # fmt: skip
    key_source = serializers.CharField(read_only=True)

    class Meta:
        model = Judge
        fields = [
            "id", "name", "provider", "base_url", "model", "api_key_env", "api_key",
            "key_source", "temperature", "max_tokens", "concurrency", "requests_per_minute",
            "timeout_seconds", "input_price", "output_price", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def create(self, data):
        return judges.judge_save(user=self.context["request"].user, **data)

    def update(self, judge, data):
        had_key = bool(judge.api_key_encrypted)
        judge = judges.judge_save(judge=judge, user=None, **data)
        self.key_dropped = had_key and judge.key_source == "none"
        return judge

    def to_representation(self, judge):
        data = super().to_representation(judge)
        if not user_is_admin(self.context["request"].user):
            # Leads read judges; a password in the base URL is the admins' to know.
            data["base_url"] = judge.base_url_shown
        if getattr(self, "key_dropped", False):
            data["notice"] = judges.KEY_DROPPED
        return data


class JudgingJobSerializer(serializers.ModelSerializer):
    judge = serializers.SlugRelatedField(slug_field="name", queryset=Judge.objects.all())
    pairs_per_second = serializers.FloatField(read_only=True)
    cost = serializers.FloatField(read_only=True)

    class Meta:
        model = JudgingJob
        fields = [
            "id", "judge", "project", "pairs", "limit", "status", "cancel_requested", "total",
            "done", "failed", "inconsistent", "requests", "input_tokens", "output_tokens",
            "seconds", "pairs_per_second", "cost", "failures", "error", "created_at",
            "sent_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = [f for f in fields if f not in ("judge", "pairs", "limit")]


class JudgesReadAdminsWrite(IsAuthenticated):
    """Reading: admins and leads of any project. Changing: admins only."""

    message = "Only admins configure judges; leads may look."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if user_is_admin(request.user):
            return True
        is_lead = Membership.objects.filter(user=request.user, role=Membership.Role.LEAD)
        return request.method in SAFE_METHODS and is_lead.exists()


class JudgeList(generics.ListCreateAPIView):
    queryset = Judge.objects.all()
    serializer_class = JudgeSerializer
    permission_classes = [JudgesReadAdminsWrite]


class JudgeDetail(generics.RetrieveUpdateAPIView):
    queryset = Judge.objects.all()
    serializer_class = JudgeSerializer
    permission_classes = [JudgesReadAdminsWrite]


class ProjectJudgingJobs(ProjectScopedView):
    permission_classes = [IsProjectLead]

    @extend_schema(responses=JudgingJobSerializer(many=True))
    def get(self, request, pk: int):
        """The project's judging jobs, newest first."""
        jobs = self.get_project().judging_jobs.select_related("judge")
        return Response(JudgingJobSerializer(jobs, many=True).data)

    @extend_schema(request=JudgingJobSerializer, responses={201: JudgingJobSerializer})
    def post(self, request, pk: int):
        """Queue a judge over the project's pairs: {judge, pairs, limit}."""
        project = self.get_project()
        payload = JudgingJobSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        job = judges.judging_job_create(
            judge=data["judge"], project=project, user=request.user,
            pairs=data.get("pairs", JudgingJob.Pairs.UNLABELLED), limit=data.get("limit"),
        )  # fmt: skip
        return Response(JudgingJobSerializer(job).data, status=status.HTTP_201_CREATED)


class JudgingJobView(ProjectScopedView):
    permission_classes = [IsProjectLead]

    def get_job(self) -> JudgingJob:
        job = get_object_or_404(JudgingJob.objects.select_related("judge", "project"),
                                pk=self.kwargs["pk"])  # fmt: skip
        return self.checked(job)


class JudgingJobDetail(JudgingJobView):
    @extend_schema(responses=JudgingJobSerializer)
    def get(self, request, pk: int):
        return Response(JudgingJobSerializer(self.get_job()).data)


class JudgingJobCancel(JudgingJobView):
    @extend_schema(request=None, responses=JudgingJobSerializer)
    def post(self, request, pk: int):
        """Stop after the requests in flight; a queued job is cancelled at once."""
        job = self.get_job()
        judges.judging_job_cancel(job=job)
        job.refresh_from_db()
        return Response(JudgingJobSerializer(job).data)
