from __future__ import annotations

from typing import Any

from django import forms

from engine.models import Project, Role


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description", "annotation_fps", "phase", "memory_policy"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # optional: a form (or a script) that leaves it out gets Meta's behaviour
        self.fields["memory_policy"].required = False

    def clean_memory_policy(self) -> str:
        return self.cleaned_data.get("memory_policy") or "all"

    def clean_annotation_fps(self) -> float:
        value = self.cleaned_data["annotation_fps"]
        if not 0 < value <= 60:
            raise forms.ValidationError("Annotation fps must be between 0 and 60.")
        return float(value)


_PROJECT_ROLES = [
    ("annotator", "Annotator"),
    ("reviewer", "Reviewer"),
    ("manager", "Manager"),
]


class AddMemberForm(forms.Form):
    identifier = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=_PROJECT_ROLES, initial="annotator")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=_PROJECT_ROLES)


class AccountForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Leave empty to get a one-time link the person uses to choose a password.",
    )


class PasswordResetForm(forms.Form):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Leave empty to get a one-time link instead.",
    )
