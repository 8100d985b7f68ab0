"""swarmstack's policy pack: CrossGuard rules that catch an unsafe swarm before it exists.

`policies.pack.POLICIES` is the list of rules; `__main__.py` serves them to
`pulumi preview --policy-pack policies`; `swarmstack.policy.evaluate` runs them offline.
"""
