"""The web interface at /ui/: browse repositories, tags and manifests, see storage use, and
delete tags and manifests, as the API's auth policy allows.

Server-rendered Jinja2 pages (templates/), one stylesheet and a few lines of script that only
add copy buttons: everything reads with JavaScript off. `install(app, config)` is all
`create_app` calls.
"""

from registry.ui.app import install

__all__ = ["install"]
