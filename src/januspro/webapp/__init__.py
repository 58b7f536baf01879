"""Gradio web app (`januspro web`): a thin adapter over `januspro.engine`.

    from januspro.webapp.app import WebSettings, build_app
    build_app(januspro.load(...), WebSettings()).queue().launch()

`januspro.webapp.cli` imports nothing heavy (the main CLI imports it on every invocation);
`januspro.webapp.app` imports gradio.
"""
