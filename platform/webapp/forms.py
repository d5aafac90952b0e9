from __future__ import annotations

from django import forms

from engine.models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description", "annotation_fps", "phase"]

    def clean_annotation_fps(self) -> float:
        value = self.cleaned_data["annotation_fps"]
        if not 0 < value <= 60:
            raise forms.ValidationError("Annotation fps must be between 0 and 60.")
        return float(value)
