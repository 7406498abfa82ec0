"""faceswap_common: the Lambda layer shared by the pipeline's functions.

Primitives (models, settings, provider client, webhook signatures, job store, storage, URL guard,
notifications) plus the flow logic the thin handlers call. Modules are imported explicitly
(`from faceswap_common.job_store import JobStore`) so a function only pays for what it uses.
"""
