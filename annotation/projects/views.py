"""Pages that set a project up: admins and leads create projects; leads change their
settings, guidelines, members and the order in which the queue serves their work."""

from dataclasses import fields

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.access import ADMIN, may_create_projects, project_for, user_is_admin
from annotation.agreement.consensus import DifficultyRule
from annotation.errors import add_service_errors
from annotation.labelling.selectors import precedence_of
from annotation.models import Membership, Project
from annotation.projects.forms import MemberForm, ProjectSettingsForm
from annotation.projects.selectors import projects_with_roles
from annotation.projects.services import (
    membership_add,
    membership_remove,
    membership_role_set,
    precedence_move,
    project_create,
    project_update,
)
from annotation.rendering import render_markdown


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    if not may_create_projects(request.user):
        raise PermissionDenied("Admins and leads create projects.")
    form = ProjectSettingsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            lead = None if user_is_admin(request.user) else request.user
            project = project_create(fields=form.cleaned_data, lead=lead)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Created {project.name}; now add its people.")
            return redirect(f"{_settings_url(project.pk)}#members")
    status = 400 if form.errors else 200
    return render(request, "annotation/project_settings.html", {"form": form}, status=status)


def _settings_url(pk: int) -> str:
    return reverse("project-settings", args=[pk])


def _members(project):
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .annotate(n_labels=Count("user__labels", filter=Q(user__labels__pair__project=project)))
        .order_by("role", "user__username")
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, pk: int):
    project, role = project_for(request, pk, manage=True)
    is_admin = role == ADMIN
    form = ProjectSettingsForm(instance=project)
    member_form = MemberForm()
    if request.method == "POST" and request.POST.get("action") == "precedence":
        return _precedence_moved(request, project)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "settings":
            # A copy: validating the form writes into its instance, and project_update
            # compares against the saved settings.
            form = ProjectSettingsForm(request.POST, instance=Project.objects.get(pk=project.pk))
            if form.is_valid():
                try:
                    changed = project_update(project=project, fields=form.cleaned_data)
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    messages.success(request, _saved(changed))
                    return redirect(_settings_url(project.pk))
        elif action == "add":
            member_form = MemberForm(request.POST)
            if member_form.is_valid():
                try:
                    added = membership_add(
                        project=project,
                        identifier=member_form.cleaned_data["user"],
                        role=member_form.cleaned_data["role"],
                    )
                except ValidationError as exc:
                    add_service_errors(member_form, exc)
                else:
                    messages.success(request, f"Added {added.user.get_username()} as {added.role}.")
                    return redirect(f"{_settings_url(project.pk)}#members")
        elif action in ("role", "remove"):
            membership = get_object_or_404(
                Membership.objects.select_related("user"),
                pk=_id(request.POST.get("membership")),
                project=project,
            )
            name = membership.user.get_username()
            try:
                if action == "role":
                    new_role = request.POST.get("role", "")
                    membership_role_set(
                        membership=membership, role=new_role, actor=request.user,
                        actor_is_admin=is_admin,
                    )  # fmt: skip
                    messages.success(request, f"{name} is now {new_role}.")
                else:
                    membership_remove(
                        membership=membership, actor=request.user, actor_is_admin=is_admin
                    )
                    messages.success(request, f"Removed {name}; their labels stay.")
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect(f"{_settings_url(project.pk)}#members")
    context = {
        "project": project,
        "form": form,
        "member_form": member_form,
        "members": _members(project),
        "precedence": precedence_of(project=project, counts=True),
        "roles": Membership.Role.choices,
        "is_admin": is_admin,  # admins may change their own membership; leads may not
    }
    status = 400 if form.errors or member_form.errors else 200
    return render(request, "annotation/project_settings.html", context, status=status)


def _precedence_moved(request, project: Project):
    """An up, down, pause or resume button of the precedence section."""
    kind, name, move = (request.POST.get(key, "") for key in ("kind", "name", "move"))
    try:
        precedence_move(project=project, kind=kind, name=name, move=move)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        done = {"up": "moved up", "down": "moved down", "pause": "paused", "resume": "resumed"}
        messages.success(request, f"The {kind} {name} is {done[move]}.")
    return redirect(f"{_settings_url(project.pk)}#precedence")


def _id(value: str | None) -> int:
    """A posted row id; 0 (no such row) for anything that is not one."""
    return int(value) if value and value.isascii() and value.isdigit() else 0


def _saved(changed: list[str]) -> str:
    if not changed:
        return "Nothing changed."
    saved = f"Saved: {', '.join(name.replace('_', ' ') for name in changed)}."
    if set(changed) & REGRADED_BY:
        saved += " A worker is re-grading the labelled pairs by the new rule."
    return saved


REGRADED_BY = {field.name for field in fields(DifficultyRule)}


@login_required
@require_POST
def markdown_preview(request):
    """The settings page's live preview: Markdown as the app renders it everywhere, inert."""
    return JsonResponse({"html": render_markdown(request.POST.get("text", "")[:100_000])})


@login_required
def home(request):
    return render(
        request,
        "annotation/home.html",
        {
            "projects": projects_with_roles(user=request.user),
            "is_admin": user_is_admin(request.user),
            "may_create": may_create_projects(request.user),
        },
    )
