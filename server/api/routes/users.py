from fastapi import APIRouter

from server import schemas
from server.api.pagination import PageParams
from server.deps import Admin, AnyUser, DatabaseDep, SocketsDep
from server.services import users
from server.tables import User

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=schemas.UserOut)
async def me(user: AnyUser) -> User:
    return user


@router.get("", response_model=schemas.Page[schemas.UserOut])
async def list_users(_: Admin, db: DatabaseDep, page: PageParams) -> schemas.Page[schemas.UserOut]:
    return await db.read(users.list_users, limit=page.limit, offset=page.offset)


@router.post("", response_model=schemas.UserOut, status_code=201)
async def create_user(body: schemas.UserCreate, _: Admin, db: DatabaseDep) -> User:
    return await db.write(users.create_user, body)


@router.patch("/{username}", response_model=schemas.UserOut)
async def update_user(
    username: str, body: schemas.UserUpdate, _: Admin, db: DatabaseDep, sockets: SocketsDep
) -> User:
    """A new password, role or status revokes the user's tokens and ends their sockets;
    the last active admin cannot be demoted or disabled (409 `last_admin`)."""
    user = await db.write(users.update_user, username, body)
    sockets.recheck(username)
    return user
