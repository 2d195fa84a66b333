"""Household links are signed when an operator opens one, not whenever a search lists meters.

Search answers carry `/household/<id>/link`; following it (operator only) signs one link
for that meter, writes it to the audit trail and redirects to the signed page, whose URL
the operator can then hand to the household.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboards import audit, validation
from dashboards.auth import expiry_text
from dashboards.context import ctx


async def mint(request: Request) -> Response:
    validation.only(request.query_params, set())
    sid = validation.service_id(request.path_params["service_id"])
    c = ctx(request)
    if not c.access.is_operator(request):
        if c.access.presented_operator(request):
            c.access.require_operator(request)     # 403: wrong credentials
        return RedirectResponse("/login", status_code=303)
    expires = c.access.link_expiry()
    audit.record(request, f"household link made for {sid}, valid until {expiry_text(expires)},")
    return RedirectResponse(c.access.household_link(sid, expires), status_code=303,
                            headers={"Cache-Control": "no-store"})
