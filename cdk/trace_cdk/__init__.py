"""The Trace AWS CDK app: one construct per capability, composed into one stack per stage.

``stack.TraceStack`` composes network, data, queues, functions, api, services and
observability; ``config`` turns the ``cdk.json`` context into a validated stage;
``nag`` runs cdk-nag and holds every acknowledgment with its reason.
"""
