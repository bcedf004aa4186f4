"""Who am I, and what have I used."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from llmapi.api.deps import IdentityDep
from llmapi.api.responses import json_response
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import PrincipalDep, require
from llmapi.auth.scopes import Scope
from llmapi.protocol.admin import Me, UsageReport
from llmapi.protocol.common import UTCTime

router = Router(prefix="/v1", tags=["identity"], route_class=AuthenticatedRoute)


@router.get("/me", response_model=Me, summary="The calling credential: who, role, scopes, limits")
async def me(principal: PrincipalDep) -> Response:
    limits = principal.rate_limits
    return json_response(
        Me(
            id=principal.id,
            kind=principal.kind,
            name=principal.name,
            role=principal.role,
            scopes=sorted(scope.value for scope in principal.scopes),
            rate_limits=limits,
        )
    )


@router.get(
    "/usage",
    response_model=UsageReport,
    summary="Requests and tokens by day and model: your own, or everyone's for an admin (all=true)",
    dependencies=[require(Scope.USAGE_READ)],
)
async def usage(
    principal: PrincipalDep,
    identity: IdentityDep,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    whose = None if everyone and principal.allows(Scope.ADMIN) else principal.id
    return json_response(await identity.usage_report(principal_id=whose, since=since, until=until))
