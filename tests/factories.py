import factory
from django.contrib.auth import get_user_model

from annotation.models import Membership, Pair, Project

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ANNOTATOR


class PairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pair

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"pair-{n}")
    prompt = factory.Sequence(lambda n: f"Question number {n}?")
    response_a = factory.Sequence(lambda n: f"First answer {n}")
    response_b = factory.Sequence(lambda n: f"Second answer {n}")
