from django.apps import AppConfig
from django.db.models.signals import post_delete


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from annotation.activity.signals import connect
        from annotation.models import Membership

        connect()

        post_delete.connect(_member_left, sender=Membership, dispatch_uid="member-left")


def _member_left(sender, instance, **kwargs) -> None:
    """A member taken off a project gives back the pairs they hold in its queue."""
    from annotation.labelling.services import assignments_release

    assignments_release(project_id=instance.project_id, annotator_id=instance.user_id)
