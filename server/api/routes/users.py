from fastapi import APIRouter
from sqlalchemy.orm import Session

from server import schemas
from server.api.pagination import PageParams
from server.deps import Admin, AnyUser, ClientAddress, DatabaseDep, SocketsDep
from server.services import audit, membership, users
from server.tables import User

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=schemas.UserOut)
async def me(user: AnyUser) -> User:
    return user


@router.get("", response_model=schemas.Page[schemas.UserOut])
async def list_users(_: Admin, db: DatabaseDep, page: PageParams) -> schemas.Page[schemas.UserOut]:
    def work(session: Session) -> schemas.Page[schemas.UserOut]:
        found, total = users.list_users(session, limit=page.limit, offset=page.offset)
        return page.of([schemas.UserOut.model_validate(user) for user in found], total)

    return await db.read(work)


@router.post("", response_model=schemas.UserOut, status_code=201)
async def create_user(
    body: schemas.UserCreate, admin: Admin, client: ClientAddress, db: DatabaseDep
) -> User:
    """Create a user, a member of `warehouses` (audited)."""

    def work(session: Session) -> User:
        user = membership.set_warehouses(session, users.create_user(session, body), body.warehouses)
        audit.user_created(session, user, actor=admin.username, client=client)
        return user

    return await db.write(work)


@router.patch("/{username}", response_model=schemas.UserOut)
async def update_user(
    username: str,
    body: schemas.UserUpdate,
    admin: Admin,
    client: ClientAddress,
    db: DatabaseDep,
    sockets: SocketsDep,
) -> User:
    """Change a user's role, status, password or profile (audited, old and new values).
    A new password, role or status revokes the user's tokens and ends their sockets; the
    last active admin cannot be demoted or disabled (409 `last_admin`)."""

    def work(session: Session) -> User:
        before = audit.user_snapshot_of(session, username)
        user = users.update_user(session, username, body)
        after = audit.user_snapshot(user)
        reset = body.password is not None
        audit.user_changed(
            session,
            username,
            before,
            after,
            password_reset=reset,
            actor=admin.username,
            client=client,
        )
        return user

    user = await db.write(work)
    sockets.recheck(username)
    return user


@router.put("/{username}/warehouses", response_model=schemas.UserOut)
async def set_user_warehouses(
    username: str,
    body: schemas.UserWarehouses,
    admin: Admin,
    client: ClientAddress,
    db: DatabaseDep,
) -> User:
    """The warehouses the user works in, replacing the ones before (audited). Admins work
    in every warehouse whatever their memberships."""

    def work(session: Session) -> User:
        before = audit.user_snapshot_of(session, username)
        user = membership.set_user_warehouses(session, username, body.warehouses)
        audit.user_changed(
            session,
            username,
            before,
            audit.user_snapshot(user),
            actor=admin.username,
            client=client,
        )
        return user

    return await db.write(work)
