"""A tqdm bar fed by ``Pipeline.follow``: the job's status in the description, the engine's progress as the bar."""

from __future__ import annotations

from faceswap_local.client import Progress


class ProgressDisplay:
    """Call it with each Progress; close it when the job is done."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.label = label
        self.status = "PENDING"
        self.bar = tqdm(total=100, desc=f"{label} {self.status}", disable=not enabled, leave=True,
                        bar_format="{desc:<34} |{bar}| {n:3.0f}% [{elapsed}] {postfix}")

    def __call__(self, progress: Progress) -> None:
        if progress.status != self.status:
            self.status = progress.status
            self.bar.set_description_str(f"{self.label} {progress.status}")
        value = 100.0 if progress.status in ("STORING", "COMPLETED") else progress.percent
        if value is not None and value > self.bar.n:
            self.bar.update(min(100.0, value) - self.bar.n)
        if progress.message:
            self.bar.set_postfix_str(progress.message[-48:], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
