"""/api/v1: posts and threads."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from app.deps import LiveDep, PrincipalDep
from app.schemas import PostCreate, PostEdit, PostPage, PostThread
from app.services import posts
from realtime.events import Post


@post("/rooms/{room_id:str}/posts", summary="Post in a room (or reply, with parent_id)", opt={"rate": "post"})
async def create_post(
    room_id: FromPath[str], data: JSONBody[PostCreate], principal: PrincipalDep, live: LiveDep
) -> Post:
    return await posts.create_post(principal.account_id, room_id, data, live)


@get("/rooms/{room_id:str}/posts", summary="Top-level posts, newest first, with reply counts")
async def list_posts(
    room_id: FromPath[str],
    principal: PrincipalDep,
    before: Annotated[str | None, QueryParameter(description="Exclusive: posts older than this post id")] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=100)] = None,
) -> PostPage:
    return await posts.list_posts(principal.account_id, room_id, before, limit)


@get("/posts/{post_id:str}", summary="A post with its replies as a nested tree")
async def get_post(post_id: FromPath[str], principal: PrincipalDep) -> PostThread:
    return await posts.get_thread(principal.account_id, post_id)


@patch("/posts/{post_id:str}", summary="Edit your post", opt={"rate": "edit"})
async def edit_post(post_id: FromPath[str], data: JSONBody[PostEdit], principal: PrincipalDep, live: LiveDep) -> Post:
    return await posts.edit_post(
        principal.account_id, post_id, data.body, live, content_note=data.content_note, reply_wish=data.reply_wish
    )


@delete("/posts/{post_id:str}", summary="Delete a post (its author or the coach)", status_code=HTTP_204_NO_CONTENT)
async def delete_post(post_id: FromPath[str], principal: PrincipalDep, live: LiveDep) -> None:
    await posts.delete_post(principal.account_id, post_id, live)


ROUTES: list[Any] = [create_post, list_posts, get_post, edit_post, delete_post]
