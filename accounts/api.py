from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import CAPABILITIES, perm
from accounts.services import token_for, user_role


class MeApi(APIView):
    """Who the caller is, their role and what it allows."""

    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        role = serializers.CharField(allow_null=True)
        capabilities = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        user = request.user
        data = {
            "id": user.id,
            "username": user.username,
            "role": user_role(user),
            "capabilities": [c for c in CAPABILITIES if user.has_perm(perm(c))],
        }
        return Response(self.OutputSerializer(data).data)


class TokenApi(APIView):
    """The caller's API token, for scripts (send it as `Authorization: Token <key>`)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=inline_serializer("Token", {"token": serializers.CharField()}))
    def get(self, request):
        return Response({"token": token_for(user=request.user)})
