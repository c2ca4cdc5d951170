"""PK8xx — extra networks: the ``<lora:…>`` tags of a prompt and the files they name."""

from __future__ import annotations

from promptkit.diagnostics import quoted
from promptkit.a1111.networks import LORA_KINDS, NetworkError, NetworkTag, find_lora_file, network_tags, parse_lora_tag

from ..registry import Example, Option, Rule, register

#: the named arguments A1111's built-in Lora extension reads; others (``lbw=`` of the block-weight
#: extension) are read by extensions or ignored, so they are not an error here
_A1111_NAMED = ("te", "unet", "dyn")


def _a1111_args(tag: NetworkTag) -> NetworkTag:
    """``tag`` without the named arguments A1111 itself ignores."""
    kept = tuple(a for a in tag.args if len(a.split("=", 2)) != 2 or a.split("=", 2)[0] in _A1111_NAMED)
    return NetworkTag(tag.kind, kept, tag.text, tag.span)


@register
class LoraTag(Rule):
    """A `<lora:…>` tag A1111 cannot apply: a weight that is no number, no name, or (with the
    option `lora-dir`) no such file in the LoRA folder.

    **What it catches.** `<lora:detail:O.6>` (a letter O), `<lora:detail:0.6:unet=x>`,
    `<lora::0.6>`, `<lora:detail:0.6:dyn=0>`; with `lora-dir = "models/Lora"` (or
    `prompt-lint --lora-dir models/Lora`), a name with no `name.safetensors` / `.pt` / `.ckpt`
    under that folder (sub-folders included, as A1111 finds them) or with two such files.
    Tags are read from the positive prompt after `#` comments are removed, as A1111 reads them;
    `<lyco:…>` is the same tag.

    **Why.** A1111 prints an error on its console and makes the image without the LoRA (a weight
    it cannot read stops the activation of every LoRA of that prompt; a missing file is listed
    under "Networks not found" in the infotext) — the prompt looks fine and the image is not what
    it says.

    **Fix.** None: correct the number or the name, or download the file.
    """

    code = "PK801"
    name = "lora-tag"
    severity = "error"
    default = True
    backends = ("a1111",)
    options = (Option("lora-dir", "path", "", "the LoRA folder to look the files up in (empty: names are not checked)"),)
    examples = (
        Example(bad="<lora:detail_tweaker:O.6>, 1girl, smile", good="<lora:detail_tweaker:0.6>, 1girl, smile"),
        Example(bad="1girl, <lora:detail_tweaker:te=0.8:unet=x>", good="1girl, <lora:detail_tweaker:te=0.8:unet=0.4>"),
    )

    def check(self, ctx):
        field = ctx.field("positive")
        if field is None or "<" not in field.text:
            return
        folder = ctx.option(self, "lora-dir")
        for tag in network_tags(field.text):
            if tag.kind not in LORA_KINDS:
                continue
            try:
                spec = parse_lora_tag(_a1111_args(tag))
            except NetworkError as exc:
                yield ctx.diag(self, tag.span, f"{exc}: A1111 cannot apply it and makes the image without it",
                               field=field.name)
                continue
            if folder:
                try:
                    find_lora_file(folder, spec.name)
                except NetworkError as exc:
                    yield ctx.diag(self, tag.span, f"{quoted(tag.text)}: {exc}; A1111 makes the image without it",
                                   field=field.name)
