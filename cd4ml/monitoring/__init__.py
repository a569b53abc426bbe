"""Monitoring and the data feedback loop: what the model does in the wild, and how good it really is.

    events_source  the interface of prediction events and their schema check (pure)
    window         the time window of `monitor`, from --since/--until (pure)
    jsonl_events   events from the local JSONL log
    elasticsearch_events  events from Elasticsearch (reading)
    elasticsearch_index   the monitoring summary into Elasticsearch (writing)
    elasticsearch_client  the client and its calls, errors as ours
    analysis       streaming aggregates of events: volume, latency percentiles, PSI (pure)
    profile        the training profile the pipeline logs with every model (pure)
    accuracy       actual sales joined to what production forecast; live metrics (pure)
    report         alerts and the printed report (pure)
    feedback       arrived actuals appended to the training data, safely
    run            the `monitor` command's wiring: gather, judge, log to MLflow, write latest.json
"""
