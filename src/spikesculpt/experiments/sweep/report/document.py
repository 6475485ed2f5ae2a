"""The report as plain blocks, rendered twice: Markdown (report.md) and HTML (report.html).

Both files are rendered from the same blocks, so they hold the same numbers (the text of every
table cell is made once). Figures are PNG bytes: embedded in the HTML as ``data:image/png;
base64`` URIs (the file needs nothing else: no scripts, styles or images from elsewhere);
the Markdown names them and points to report.html.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Union


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list


@dataclass
class Code:
    lines: list


@dataclass
class Table:
    head: list
    rows: list                       # lists of cell texts
    caption: str = ""


@dataclass
class Figure:
    png: bytes
    title: str
    caption: str = ""


Block = Union[Paragraph, Bullets, Code, Table, Figure]


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


# ---------------------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Code):
        return "```\n" + "\n".join(block.lines) + "\n```"
    if isinstance(block, Table):
        lines = [f"*{block.caption}*", ""] if block.caption else []
        lines.append("| " + " | ".join(_md_cell(h) for h in block.head) + " |")
        lines.append("|" + "---|" * len(block.head))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    return f"*Figure: {block.title}* (in report.html). {block.caption}".rstrip()


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += [_md_block(b) for b in section.blocks]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------- HTML
STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd;
       padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; } td.n { text-align: right; white-space: nowrap; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap; font-size: .88em; }
figure { margin: 1em 0 1.6em; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .9em; color: #555; }
div.wide { overflow-x: auto; }
"""


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


NUMBER_TEXT = re.compile(r"^[-+0-9.,±()\[\] —%e]+$")


def _td(text) -> str:
    """A table cell; numbers (``35.83 ± 2.36 (2)``, ``+1.46 [-27.66, +30.58]``) right-aligned."""
    numeric = bool(NUMBER_TEXT.match(str(text))) and any(ch.isdigit() for ch in str(text))
    return f'<td class="n">{_esc(text)}</td>' if numeric else f"<td>{_esc(text)}</td>"


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Code):
        return "<pre>" + _esc("\n".join(block.lines)) + "</pre>"
    if isinstance(block, Table):
        caption = f"<caption>{_esc(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{_esc(h)}</th>" for h in block.head)
        body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in block.rows)
        return (f'<div class="wide"><table>{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>")
    data = base64.b64encode(block.png).decode("ascii")
    caption = f"<figcaption>{_esc(block.caption)}</figcaption>" if block.caption else ""
    return (f'<figure><img alt="{_esc(block.title)}" src="data:image/png;base64,{data}">'
            f"{caption}</figure>")


def render_html(title: str, sections: list[Section]) -> str:
    body = [f"<h1>{_esc(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{_esc(section.title)}</h2>")
        body += [_html_block(b) for b in section.blocks]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
