"""A project as the API shows and changes it."""

from rest_framework import serializers

from annotation.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "guidelines", "criteria", "allow_ties", "ask_strength",
            "annotators_per_pair", "assignment_timeout", "consensus_rule", "min_reliability",
            "role",
        ]  # fmt: skip

    def get_role(self, project: Project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class PlaceSerializer(serializers.Serializer):
    """One place in a project's order of precedence for its unlabelled work, highest first:
    a round's pairs or one source's pairs outside rounds. `placed` is false for a place that
    falls in by default (rounds on top, newest first; sources nobody placed at the bottom);
    `unlabelled` counts its pairs still short of annotators."""

    kind = serializers.ChoiceField(choices=["round", "source"])
    name = serializers.CharField()
    paused = serializers.BooleanField(default=False)
    unlabelled = serializers.IntegerField(read_only=True)
    placed = serializers.BooleanField(read_only=True)
