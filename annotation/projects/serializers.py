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
