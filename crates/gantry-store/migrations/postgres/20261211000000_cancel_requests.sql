-- Cancel requests for runs another server steps (several servers on one database): the
-- server holding the run's lease takes them on its next tick and cancels the run.
CREATE TABLE cancel_requests (
    run_id TEXT   PRIMARY KEY,
    at     BIGINT NOT NULL
);
