"""A client for OCI and Docker registries, shared by the puller and the registry's pull-through
cache: image references (`reference`), auth challenges (`challenge`), Basic and Bearer token auth
with tokens cached per scope (`client`), docker config.json credentials (`credentials`), media
types (`mediatypes`) and verified, resumable blob transfers (`transfer`).

It knows nothing of local image stores or of the registry server; it sits below both.
"""
