"""Prompts shared by the lint tests (and by the tag-list excerpt that lint_fixtures.py builds from ../shared)."""

# Each profile's prompt from its model card (../shared/model-cards/, or the card quoted in
# spec/tags-and-lint.md §2.4 where the card itself is not in ../shared).
CARD_PROMPTS = {
    # model-cards/rouwei.txt: "by kantoku, by wlop, best quality, masterpiece BREAK 1girl, ..." and its negative
    "rouwei": ("by kantoku, by wlop, best quality, masterpiece BREAK 1girl", "worst quality, low quality, watermark"),
    # model-cards/animetic-synapse.txt (an Illustrious-family merge): its diffusers example
    "illustrious": (
        "painterly semi-realistic fantasy portrait, expressive texture, elegant fashion design, mythic atmosphere,"
        " cinematic composition",
        "low quality, worst quality, bad anatomy, bad hands, text, watermark",
    ),
    # model-cards/animagine-xl-2.0.md: widget example "1boy" and the recommended negative
    "animagine2": (
        "face focus, bishounen, masterpiece, best quality, 1boy, green hair, sweater, looking at viewer, upper body,"
        " beanie, outdoors, night, turtleneck",
        "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst"
        " quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry",
    ),
    # spec §2.4: NoobAI-XL user manual prefix + the NoobAI card negative
    "noobai": (
        "very awa, masterpiece, best quality, year 2024, newest, highres, absurdres, 1girl, solo, smile",
        "nsfw, worst quality, old, early, low quality, lowres, signature, username, logo, bad hands, mutated hands,"
        " mammal, anthro, furry, ambiguous form, feral, semi-anthro",
    ),
    # spec §2.4: Animagine XL 4.0 template (count, character, series, rating, general, quality last) + negative
    "animagine4": (
        "1girl, hoshimachi suisei, hololive, safe, smile, outdoors, masterpiece, high score, great score, absurdres",
        "lowres, bad anatomy, bad hands, text, error, missing finger, extra digits, fewer digits, cropped, worst"
        " quality, low quality, low score, bad score, average score, signature, watermark, username, blurry",
    ),
    # spec §2.4 / HF cagliostrolab/animagine-xl-3.1 card example
    "animagine3": (
        "1girl, souryuu asuka langley, neon genesis evangelion, solo, upper body, masterpiece, best quality,"
        " very aesthetic, absurdres",
        "nsfw, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped,"
        " worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry",
    ),
    # spec §2.4: Pony V6 card score chain, source_/rating_ tags
    "pony": (
        "score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, source_anime, rating_safe, 1girl, solo,"
        " smile",
        None,
    ),
    # Terminus XL Otaku (model-cards/terminus-xl-otaku.md) takes prose prompts; the card has no example,
    # so this is a plain prose prompt of the kind it describes.
    "natural": ("a girl with long silver hair smiling in a flower field at sunset, anime illustration", None),
}

# other prompts the lint tests use
EXTRA = [
    "1girl, mind break, break blade",
    "by wlop, 1girl, smile",
    "1girl, long hair, smile, outdoors, blonde hair, blue eyes",
    "1girl, (smile:1.2), outdoors",
    "kantoku, 1girl",
    "reverse:1999, vertin (reverse:1999)",
    "vertin \\(reverse:1999\\)",
    "karin_(blue_archive), ^_^, score_9",
    "masterpiece, best quality, 1girl, solo, long hair, smile, outdoors",
    "worst quality, low quality, watermark",
    "1girl, smile, outdoors",
    "long hair, smile",
    "cat ears, looking at viewer, simple background",
]

ALL_TEXTS = [t for pair in CARD_PROMPTS.values() for t in pair if t] + EXTRA
