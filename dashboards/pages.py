"""HTML pages: static shells filled by the page scripts from the JSON API and SSE.

Templates are plain HTML files with `{{name}}` slots, filled with html-escaped values
(no template engine, no inline script: the Content-Security-Policy allows only 'self').
A page that needs credentials checks them here too, so a refused page carries no data.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from auth_kappa.topology.schema import UNITS, UTILITIES
from dashboards import audit, validation
from dashboards.auth import COOKIE, Denied
from dashboards.context import ctx
from dashboards.openapi import spec


@cache
def _template(name: str) -> str:
    return resources.files("dashboards").joinpath("templates", name).read_text()


def render(name: str, code: int = 200, **slots: str) -> HTMLResponse:
    body = _template(name)
    for key, value in slots.items():
        body = body.replace("{{" + key + "}}", html.escape(str(value), quote=True))
    page = _template("layout.html").replace("{{title}}", html.escape(slots.get("title", "AUTH")))
    return HTMLResponse(page.replace("{{body}}", body), status_code=code,
                        headers={"Cache-Control": "no-store"})


def error_page(status: int, message: str) -> HTMLResponse:
    return render("error.html", status, title=f"{status}", status=str(status), message=message)


async def index(request: Request) -> Response:
    c = ctx(request)
    return render("index.html", title="Smart-meter dashboard", source=c.reader.kind,
                  role="operator" if c.access.is_operator(request) else "visitor")


async def login_form(request: Request) -> Response:
    return render("login.html", title="Operator sign-in", message="")


async def login(request: Request) -> Response:
    """Form POST with the operator token; sets an HttpOnly, SameSite=Strict cookie holding a
    new random session id (the body is bounded before it is read: dashboards/guards.py)."""
    raw = (await request.body()).decode("utf-8", "replace")
    token = (parse_qs(raw).get("token") or [""])[0]
    c = ctx(request)
    if not c.access.token_ok(token):
        audit.record(request, "operator sign-in refused (wrong token)")
        return render("login.html", 403, title="Operator sign-in",
                      message="That token is not valid.")
    resp = RedirectResponse("/fleet", status_code=303)
    resp.set_cookie(COOKIE, c.access.sessions.create(), max_age=int(c.access.sessions.ttl),
                    httponly=True, samesite="strict", secure=_secure(request), path="/")
    audit.record(request, "operator signed in")
    return resp


async def logout(request: Request) -> Response:
    """Revokes the session server-side: the old cookie no longer opens anything."""
    cookie = request.cookies.get(COOKIE)
    if cookie and ctx(request).access.sessions.revoke(cookie):
        audit.record(request, "operator signed out")
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                       secure=_secure(request))
    return resp


def _secure(request: Request) -> bool:
    """Secure cookies over TLS, or behind a TLS proxy the settings name."""
    return request.url.scheme == "https" or ctx(request).settings.behind_tls_proxy


async def fleet(request: Request) -> Response:
    c = ctx(request)
    if not c.access.is_operator(request):
        return RedirectResponse("/login", status_code=303)
    return render("fleet.html", title="Fleet", source=c.reader.kind)


async def household_finder(request: Request) -> Response:
    """The finder; its id + access-code form comes back here and is sent on to the meter."""
    c = ctx(request)
    if "service_id" in request.query_params:
        try:
            sid = validation.service_id(request.query_params["service_id"].strip().lower())
        except validation.Invalid as exc:
            return error_page(400, str(exc))
        sig = request.query_params.get("sig", "").strip()
        return RedirectResponse(f"/household/{sid}?{urlencode({'sig': sig})}", status_code=303)
    return render("household_find.html", title="Find a meter",
                  role="operator" if c.access.is_operator(request) else "visitor")


async def household(request: Request) -> Response:
    c = ctx(request)
    try:
        sid = validation.service_id(request.path_params["service_id"])
        role = c.access.require_meter(request, sid)
    except validation.Invalid as exc:
        return error_page(400, str(exc))
    except Denied as exc:
        return error_page(exc.status, str(exc))
    # the page's scripts pass the signature on; an operator's page needs none
    sig = request.query_params.get("sig", "") if role == "household" else ""
    units = " / ".join(f"{u} {UNITS[u]}" for u in UTILITIES)
    return render("household.html", title="Household", sid=sid, sig=sig, role=role, units=units)


async def docs(request: Request) -> Response:
    """A readable listing of /openapi.json (no Swagger bundle to vendor)."""
    rows = []
    for path, ops in spec(request.app.routes)["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] + ("*" if p.get("required") else "")
                               for p in op.get("parameters", []))
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>"
                        f"{html.escape(path)}</code></td><td>{html.escape(params)}</td>"
                        f"<td>{html.escape(op.get('summary', ''))}</td><td>"
                        f"{html.escape(', '.join(sorted(op.get('responses', {}))))}</td></tr>")
    page = _template("docs.html").replace("{{rows}}", "\n".join(rows))
    return HTMLResponse(_template("layout.html").replace("{{title}}", "API").replace(
        "{{body}}", page))
