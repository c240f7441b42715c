// INFO replication as the gateway reads it (src/adapters/redis/replicas.ts): which replicas count as in
// sync for REDIS_MIN_REPLICAS (docs/facts/redis.md "WAIT").
import assert from "node:assert/strict";
import { test } from "node:test";
import { inSync, parseReplication } from "../../src/adapters/redis/replicas.js";

// As Redis 7.0.15 answers INFO replication on a primary with two replicas, the second stopped for 3 s.
const PRIMARY = [
  "# Replication",
  "role:master",
  "connected_slaves:2",
  "slave0:ip=127.0.0.1,port=16380,state=online,offset=5042,lag=0",
  "slave1:ip=10.0.0.7,port=6379,state=online,offset=4100,lag=3",
  "master_failover_state:no-failover",
  "master_replid:3c1b58d4a9e5f0b2c7d6e8f9a0b1c2d3e4f5a6b7",
  "master_replid2:0000000000000000000000000000000000000000",
  "master_repl_offset:5042",
  "second_repl_offset:-1",
  "repl_backlog_active:1",
  "",
].join("\r\n");

test("a primary's replicas, with their lag and acknowledged offset; one silent for more than a second is not in sync", () => {
  const r = parseReplication(PRIMARY);
  assert.equal(r.role, "master");
  assert.equal(r.offset, 5042);
  assert.deepEqual(r.replicas, [
    { host: "127.0.0.1", port: 16380, state: "online", lagS: 0, offset: 5042 },
    { host: "10.0.0.7", port: 6379, state: "online", lagS: 3, offset: 4100 },
  ]);
  assert.deepEqual(r.replicas.map(inSync), [true, false]);
});

test("a replica still loading its copy is not in sync; a primary without replicas has none", () => {
  const loading = parseReplication("role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=16380,state=wait_bgsave,offset=0,lag=0\r\nmaster_repl_offset:12\r\n");
  assert.deepEqual(loading.replicas.map(inSync), [false]);
  const alone = parseReplication("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
  assert.deepEqual(alone, { role: "master", offset: 0, replicas: [] });
  assert.equal(parseReplication("role:slave\r\nmaster_host:127.0.0.1\r\n").role, "slave");
});
