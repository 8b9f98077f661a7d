"""``/users`` (ours): the operator UI's logins. Passwords go in, never come out.

``PUT /users/{name}`` with ``{"password", "role"}`` creates a user in the caller's app (409
if the name is taken anywhere in the install); ``GET`` lists them; ``DELETE`` removes one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import StrictStr

from aislehub.api.deps import Caller, CallerDep
from aislehub.api.models import Body
from aislehub.api.paging import paged_list
from aislehub.errors import BadRequest, Conflict, NotFound
from aislehub.store.users import ROLES, User, UserStore, check_user_name

Json = dict[str, Any]
UserName = Annotated[str, Path(alias="userName")]

router = APIRouter(tags=["Users (aislehub)"])


class UserBody(Body):
    password: StrictStr
    role: StrictStr = "admin"


def user_json(user: User) -> Json:
    return {"name": user.name, "role": user.role, "createdAt": user.created_at.isoformat()}


def _users(caller: Caller) -> UserStore:
    return UserStore(caller.ctx.store.engine)


@router.get("/users", summary="List the app's users")
async def list_users(request: Request, caller: CallerDep) -> Json:
    items = [user_json(u) for u in _users(caller).in_app(caller.app_id)]
    return paged_list(request, caller.ctx.public_base_url, items)


@router.put("/users/{userName}", status_code=201, summary="Create a user")
async def create_user(name: UserName, body: UserBody, caller: CallerDep) -> Json:
    problem = check_user_name(name)
    if problem is None and body.role not in ROLES:
        problem = f"role is one of {', '.join(ROLES)}"
    if problem is not None:
        raise BadRequest(problem[0].upper() + problem[1:] + ".")
    try:
        user = _users(caller).create(User(caller.app_id, name, body.role), body.password)
    except ValueError as exc:
        if "exists" in str(exc):
            raise Conflict(f"User {name!r} exists.") from None
        raise BadRequest(str(exc).capitalize() + ".") from None
    return user_json(user)


@router.delete("/users/{userName}", status_code=204, summary="Delete a user")
async def delete_user(name: UserName, caller: CallerDep) -> None:
    if not _users(caller).delete(caller.app_id, name):
        raise NotFound(f"User {name!r} was not found.")
