"""The bucket-policy evaluator the tests judge S3 calls with: `swarmstack.engine.s3_policy`,
where the engine judges the stack's own object writes with it too."""

from swarmstack.engine.s3_policy import evaluate, judged_as

__all__ = ["evaluate", "judged_as"]
