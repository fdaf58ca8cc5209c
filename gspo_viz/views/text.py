"""A person's text made safe to show with Streamlit's markdown (no Streamlit here).

A scenario's title and notes travel in shared links and files, so whoever wrote them must not make every viewer's
browser fetch from their server: `safe_markdown` keeps the markdown but turns images (inline, reference-style,
inside links, and raw <img> tags) into plain text "[image: alt]" and shows any other raw HTML as text.
`plain_text` shows a message that quotes a person's input (a file name, a value) literally, with no markdown at all.
"""
from __future__ import annotations

import html
import re

# <img ...> (raw HTML), with its alt text if it has one
_IMG_TAG = re.compile(r"<img\b[^<>]*>?", re.IGNORECASE)  # [^<>]: an unclosed tag ends at the next "<" (linear)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
# ![alt](url "title"), ![alt][ref], ![alt][] and ![ref]; an alt holding an image is handled from the innermost out
_ALT_TEXT = r"((?:[^\[\]\\]|\\.)*)"
_INLINE_IMAGE = re.compile(r"!\[" + _ALT_TEXT + r"\]\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)")
_REF_IMAGE = re.compile(r"!\[" + _ALT_TEXT + r"\](?:\[(?:[^\[\]\\]|\\.)*\])?")
_SHOWN = re.compile(r"\\\[image(?:: ((?:[^\\]|\\[^\]])*))?\\\]")  # what _alt_text writes, read back
MAX_NESTING = 20
# an autolink <scheme:...> stays a link (a link is fetched only when clicked); any other tag start is escaped
_AUTOLINK_OR_TAG = re.compile(r"<[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*>|<(?=[A-Za-z/!?])")
# characters that start markdown (or Streamlit's $math$ and :color[...]) constructs
_MARKDOWN_CHARS = re.compile(r"([\\`*_\[\]<>!$|~#{}])")


def _alt_text(alt: str) -> str:
    """The text an image becomes: [image: alt], with its brackets escaped (so it can neither open a link nor, with a
    "!" before it, an image; it reads "[image: alt]")."""
    alt = _SHOWN.sub(lambda m: m.group(1) or "", alt)  # an image inside the alt: its own alt
    alt = " ".join(re.sub(r"\\(.)", r"\1", alt).replace("[", " ").replace("]", " ").split())
    return f"\\[image: {plain_text(alt)}\\]" if alt else "\\[image\\]"


def _img_tag(m: re.Match) -> str:
    alt = _ALT.search(m.group())
    return _alt_text(html.unescape(next(g for g in alt.groups() if g is not None)) if alt else "")


def safe_markdown(text: str) -> str:
    """`text` as markdown without remote images and raw HTML: each image becomes the plain text "[image: alt]",
    other tags show as text. Links stay links (nothing is fetched unless the viewer clicks)."""
    text = _IMG_TAG.sub(_img_tag, text)
    for pattern in (_INLINE_IMAGE, _REF_IMAGE):
        for _ in range(MAX_NESTING):  # innermost images first: each pass replaces the images whose alt holds none
            new = pattern.sub(lambda m: _alt_text(m.group(1)), text)
            if new == text:
                break
            text = new
    text = text.replace("![", "!\\[")  # whatever is left (deeper than MAX_NESTING) cannot open an image
    return _AUTOLINK_OR_TAG.sub(lambda m: m.group() if len(m.group()) > 1 else "\\<", text)


def plain_text(text: str) -> str:
    """`text` shown literally by st.markdown, st.error and the like: every markdown character escaped."""
    return _MARKDOWN_CHARS.sub(r"\\\1", text)
