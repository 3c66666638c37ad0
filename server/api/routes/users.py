from fastapi import APIRouter
from sqlalchemy import func, select

from server import schemas
from server.api.pagination import PageParams
from server.deps import Admin, AnyUser, SessionDep
from server.services import users
from server.tables import User

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=schemas.UserOut)
def me(user: AnyUser) -> User:
    return user


@router.get("", response_model=schemas.Page[schemas.UserOut])
def list_users(_: Admin, session: SessionDep, page: PageParams) -> dict[str, object]:
    rows = session.scalars(
        select(User).order_by(User.username).limit(page.limit).offset(page.offset)
    )
    total = session.scalar(select(func.count(User.id))) or 0
    return {"items": list(rows), "total": total, "limit": page.limit, "offset": page.offset}


@router.post("", response_model=schemas.UserOut, status_code=201)
def create_user(body: schemas.UserCreate, _: Admin, session: SessionDep) -> User:
    return users.create_user(session, body)


@router.patch("/{username}", response_model=schemas.UserOut)
def update_user(username: str, body: schemas.UserUpdate, _: Admin, session: SessionDep) -> User:
    return users.update_user(session, username, body)
