"""OpenAI-compatible HTTP API (`januspro serve`): a thin adapter over `januspro.engine`.

    from januspro.server import ServerSettings, create_app
    app = create_app(januspro.load("deepseek-ai/Janus-Pro-1B"), ServerSettings(model_id="janus-pro-1b"))

Importing this package needs fastapi; `januspro.server.cli` does not (the main CLI imports it on
every invocation).
"""

from januspro.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: keep `import januspro.server.cli` light
    if name == "create_app":
        from januspro.server.app import create_app

        return create_app
    raise AttributeError(name)
