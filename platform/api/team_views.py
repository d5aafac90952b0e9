"""REST endpoints: a project's team (its managers only; site admins too).

    GET    /api/projects/<id>/members/              members with their roles
    POST   /api/projects/<id>/members/              {"user": username or email, "role": ...}
                                                    201; an unknown email is invited and the
                                                    answer carries its one-time ``invitation``
    PATCH  /api/projects/<id>/members/<user id>/    {"role": ...}
    DELETE /api/projects/<id>/members/<user id>/    204

Errors: 400 bad role or name, 403 not a manager of the project, 404 unknown project, user or
member, 409 the project would lose its last manager.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.parsers import DepthLimitedJSONParser
from api.views import request_user
from engine.accounts import access, membership
from engine.models import Membership

_ROLES = membership.PROJECT_ROLES


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.pk", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "role", "created_at"]
        read_only_fields = fields


class AddMemberSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=254, help_text="Username or email address")
    role = serializers.ChoiceField(choices=_ROLES)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=_ROLES)


class MembersView(APIView):
    parser_classes = [DepthLimitedJSONParser]

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        return Response(MemberSerializer(membership.members_of(project), many=True).data)

    @extend_schema(request=AddMemberSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        body = AddMemberSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        added = membership.do_add_member(
            project, body.validated_data["user"], body.validated_data["role"]
        )
        data = dict(MemberSerializer(added.membership).data)
        if added.invitation is not None:
            data["invitation"] = request.build_absolute_uri(added.invitation.path)
        return Response(data, status=status.HTTP_201_CREATED)


class MemberView(APIView):
    parser_classes = [DepthLimitedJSONParser]

    @extend_schema(request=RoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, project_id: int, user_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = membership.do_change_role(project, user_id, body.validated_data["role"])
        return Response(MemberSerializer(changed).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        membership.do_remove_member(project, user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("projects/<int:project_id>/members/", MembersView.as_view(), name="project-members"),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        MemberView.as_view(),
        name="project-member-detail",
    ),
]
