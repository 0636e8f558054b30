"""Sign-in pages: login (+ second factor), sign out, forgotten and reset password, invitation
acceptance and the 2FA set-up a restricted session is held to. The services decide everything
(throttling, lock-out, the 2FA-set-up rule); these routes only parse forms and show answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from tenantry.api.deps import SESSION_COOKIE, AnonCtxDep, clear_session_cookies, set_session_cookies
from tenantry.errors import DomainError, Invalid, RateLimited, Unauthenticated
from tenantry.services import auth, invitations, totp, users
from tenantry.web.console import (
    SETUP_2FA_PATH,
    TENANT_COOKIE,
    FormDep,
    PageCtx,
    SameOrigin,
    console_router,
    redirect,
    render,
)
from tenantry.web.i18n import _

router = console_router()
Token = Annotated[str, Query(max_length=200)]


def password_rules(request: Request) -> list[str]:
    s = request.app.state.settings
    return [
        _(
            "At least %(n)s characters (%(m)s with two-factor authentication).",
            n=s.password_min_length,
            m=s.password_min_length_with_2fa,
        ),
        _("Long passphrases are welcome; no character classes are required."),
        _("Not a common or easily guessed password, and not built from your email address."),
    ]


@router.get("/")
def home(request: Request) -> Response:
    return redirect("/dashboard" if request.cookies.get(SESSION_COOKIE) else "/login")


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html", email="", error=None)


@router.post("/login", dependencies=[SameOrigin])
def login(ctx: AnonCtxDep, form: FormDep, request: Request) -> Response:
    email, password = form.get("email", ""), form.get("password", "")
    code = form.get("totp_code") or None
    if not email or not password:
        return render(
            request, "login.html", status=400, email=email, error=_("Enter your email and password.")
        )
    try:
        issued = auth.login(ctx, email=email, password=password, totp_code=code, cookie=True)
    except Unauthenticated as exc:
        if exc.code == "totp_required":
            return render(request, "login_totp.html", status=401, email=email, password=password, error=None)
        if exc.code == "invalid_totp":
            return render(
                request, "login_totp.html", status=401, email=email, password=password, error=exc.detail
            )
        return render(request, "login.html", status=401, email=email, error=exc.detail)
    except RateLimited as exc:
        refused = render(request, "login.html", status=429, email=email, error=exc.detail)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    ctx.commit()
    response = redirect(SETUP_2FA_PATH if issued.requires_2fa_setup else "/dashboard")
    set_session_cookies(request, response, issued)
    response.delete_cookie(TENANT_COOKIE, path="/")  # the default tenant is selected at sign-in
    return response


@router.post("/logout")
def logout(ctx: PageCtx) -> Response:
    auth.logout(ctx)
    ctx.commit()
    response = redirect("/login")
    clear_session_cookies(response)
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@router.get("/forgot-password")
def forgot_page(request: Request) -> Response:
    return render(request, "forgot.html", sent=False, error=None, email="")


@router.post("/forgot-password", dependencies=[SameOrigin])
def forgot(ctx: AnonCtxDep, form: FormDep, request: Request) -> Response:
    email = form.get("email", "").strip()
    if not email:
        return render(
            request, "forgot.html", status=400, sent=False, email="", error=_("Enter your email address.")
        )
    try:
        invitations.forgot_password(ctx, email=email)
    except DomainError as exc:
        return render(request, "forgot.html", status=400, sent=False, email=email, error=exc.detail)
    ctx.commit()
    return render(request, "forgot.html", sent=True, error=None, email="")


def _password_form(
    request: Request, *, token: str, mode: str, error: str | None = None, status: int = 200
) -> Response:
    """The set-a-password page of a reset link or an invitation, with the rules explained."""
    return render(
        request,
        "set_password.html",
        status=status,
        token=token,
        mode=mode,
        error=error,
        rules=password_rules(request),
    )


@router.get("/reset-password")
def reset_page(request: Request, token: Token = "") -> Response:
    return _password_form(request, token=token, mode="reset")


@router.post("/reset-password", dependencies=[SameOrigin])
def reset(ctx: AnonCtxDep, form: FormDep, request: Request) -> Response:
    token, password = form.get("token", ""), form.get("password", "")
    try:
        invitations.reset_password(ctx, token=token, new_password=password)
    except (Invalid, Unauthenticated) as exc:
        return _password_form(request, token=token, mode="reset", error=exc.detail, status=400)
    ctx.commit()
    return render(request, "password_set.html", mode="reset")


@router.get("/invitations/accept")
def accept_page(request: Request, token: Token = "") -> Response:
    return _password_form(request, token=token, mode="invitation")


@router.post("/invitations/accept", dependencies=[SameOrigin])
def accept(ctx: AnonCtxDep, form: FormDep, request: Request) -> Response:
    token, password = form.get("token", ""), form.get("password", "")
    try:
        invitations.accept_invitation(ctx, token=token, password=password)
    except (Invalid, Unauthenticated) as exc:
        return _password_form(request, token=token, mode="invitation", error=exc.detail, status=400)
    ctx.commit()
    # The password is set; the browser signs in with it (and the second factor, once set up).
    return render(request, "password_set.html", mode="invitation")


# --- 2FA set-up (the only pages a session restricted to it reaches) ----------------------------


@router.get(SETUP_2FA_PATH)
def setup_2fa_page(ctx: PageCtx, request: Request) -> Response:
    me = users.me(ctx)
    return render(
        request, "setup_2fa.html", me=me, setup=None, codes=None, error=None, csrf_token=_csrf(request)
    )


@router.post(SETUP_2FA_PATH + "/start")
def setup_2fa_start(ctx: PageCtx, request: Request) -> Response:
    setup = totp.start_setup(ctx)
    ctx.commit()
    return render(
        request,
        "setup_2fa.html",
        me=users.me(ctx),
        setup=setup,
        codes=None,
        error=None,
        csrf_token=_csrf(request),
    )


@router.post(SETUP_2FA_PATH + "/enable")
def setup_2fa_enable(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    try:
        codes = totp.enable(ctx, code=form.get("code", ""))
    except (Invalid, Unauthenticated) as exc:
        ctx.session.rollback()
        return render(
            request,
            "setup_2fa.html",
            status=400,
            me=users.me(ctx),
            setup=None,
            codes=None,
            error=exc.detail,
            csrf_token=_csrf(request),
        )
    ctx.commit()
    return render(
        request,
        "setup_2fa.html",
        me=users.me(ctx),
        setup=None,
        codes=codes,
        error=None,
        csrf_token=_csrf(request),
    )


def _csrf(request: Request) -> str:
    from tenantry.api.deps import CSRF_COOKIE

    return request.cookies.get(CSRF_COOKIE, "")
