"""The SQL of a generation's context, shared by the claim (which returns it with each
job, saving a round trip per generation) and `load_context` (for jobs claimed without)."""

from __future__ import annotations


def context_json(parent: str, message: str, session: str, before: str, turns: str) -> str:
    """A jsonb expression: the parent's prompt and image, the turns before `before`, uploads."""
    return f"""jsonb_build_object(
    'parent_prompt', (SELECT p.refined_prompt FROM generations p WHERE p.id = {parent}),
    'turns', (SELECT coalesce(jsonb_agg(t ORDER BY t.id), '[]') FROM (
        SELECT m.id, m.role, m.text, tg.refined_prompt, tg.status = 'succeeded' AS has_image
        FROM messages m LEFT JOIN generations tg ON tg.id = m.generation_id
        WHERE m.session_id = {session} AND m.id < {before} ORDER BY m.id DESC LIMIT {turns}) t),
    'parent_image', (SELECT jsonb_build_object('key', object_key, 'content_type', content_type)
        FROM assets WHERE generation_id = {parent} AND kind = 'output' ORDER BY idx LIMIT 1),
    'uploads', (SELECT coalesce(jsonb_agg(jsonb_build_object('key', object_key,
                                                             'content_type', content_type)
                                          ORDER BY idx), '[]')
        FROM assets WHERE message_id = {message} AND kind = 'upload'))"""
