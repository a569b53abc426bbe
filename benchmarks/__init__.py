"""The benchmark command's measurements, outside the product (cd4ml/ never imports this at module level;
the model-server image does not contain it). `run_python_script.py benchmark` is the entry point.

    workshop        the pipeline, the model matrix, the model server under wrk, rollback, fluentd faults
    scale           `benchmark --size full`: the scale path at 1M, 10M and all rows
    monitor         `benchmark --monitor`: the monitor's pass over a million events
    stalling_fluentd  a stand-in fluentd that accepts and never reads
    processes       free port, wait until ready, a local `mlflow server` (shared with tests/)
    lua/            the wrk scripts
"""
