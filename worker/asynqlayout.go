package worker

// This file is the only place that knows Redis keys of Asynq's own layout
// and its task message, for what its public API cannot do: the two repairs
// after Redis lost its data, and handing a dead worker's task back sooner
// (resume.go). TestAsynqLayout pins the Asynq version these keys were
// checked against and checks the keys themselves against a real Asynq
// client: an upgrade that changes them fails there, not in production.

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// asynqVersion is the Asynq release the layout below was checked against.
const asynqVersion = "v0.26.0"

// Asynq's keys: the set of queue names asynqmon lists, and a task's hash
// (its message under the field "msg").
const asynqAllQueues = "asynq:queues"

func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// A queue's running tasks (a list), their lease expiries (a sorted set of
// Unix seconds) and its tasks waiting for a retry (a sorted set by when).
func asynqActiveKey(queue string) string { return "asynq:{" + queue + "}:active" }
func asynqLeaseKey(queue string) string  { return "asynq:{" + queue + "}:lease" }
func asynqRetryKey(queue string) string  { return "asynq:{" + queue + "}:retry" }

// asynqLeaseDuration is how far past each heartbeat Asynq sets a task's
// lease (rdb.LeaseDuration); heartbeats come every 5 s.
const asynqLeaseDuration = 30 * time.Second

// registerQueues adds queues to the set asynqmon lists. The Asynq client
// adds a queue only on its first enqueue per process.
func registerQueues(ctx context.Context, rc redis.UniversalClient, queues ...string) error {
	members := make([]any, len(queues))
	for i, q := range queues {
		members[i] = q
	}
	if err := rc.SAdd(ctx, asynqAllQueues, members...).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}

// dropStub deletes a task hash that holds no task message. A handler still
// running when Redis lost its data recreates the hash with its progress
// write (HSET result); the stub then blocks the task id for good, and
// Asynq's Inspector cannot read or delete it (it has no message).
var dropStub = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 and redis.call("HEXISTS", KEYS[1], "msg") == 0 then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0`)

// dropTaskStub removes the stub of task id in queue, if there is one.
func dropTaskStub(ctx context.Context, rc redis.UniversalClient, queue, id string) (bool, error) {
	n, err := dropStub.Run(ctx, rc, []string{asynqTaskKey(queue, id)}).Int()
	if err != nil {
		return false, fmt.Errorf("check task %s: %w", id, err)
	}
	return n == 1, nil
}

// countRecovery counts one more recovery of task id and returns the count,
// kept for ttl after the last one. This key is the service's own.
func countRecovery(ctx context.Context, rc redis.UniversalClient, id string, ttl time.Duration) (int64, error) {
	key := "lessee:recovered:" + id
	n, err := rc.Incr(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("count recoveries of %s: %w", id, err)
	}
	if err := rc.Expire(ctx, key, ttl).Err(); err != nil {
		return 0, fmt.Errorf("count recoveries of %s: %w", id, err)
	}
	return n, nil
}

// resumeScript moves task ARGV[1] from the active list to the retry set
// with the message ARGV[3], unless its lease was renewed past ARGV[2] or
// its message changed from ARGV[5] since it was read.
var resumeScript = redis.NewScript(`
local score = redis.call("ZSCORE", KEYS[3], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call("HGET", KEYS[1], "msg") ~= ARGV[5] then return 0 end
if redis.call("LREM", KEYS[2], 0, ARGV[1]) == 0 then return 0 end
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("ZADD", KEYS[4], ARGV[4], ARGV[1])
redis.call("HSET", KEYS[1], "msg", ARGV[3], "state", "retry")
return 1`)

// Fields of Asynq's task message (internal/proto/asynq.proto).
const (
	msgFieldRetry        = 5
	msgFieldRetried      = 6
	msgFieldErrorMsg     = 7
	msgFieldLastFailedAt = 11
)

// countAttempt returns the task message msg with one more attempt counted,
// its last error set to reason at now, as Asynq's retry writes it, and the
// new attempt count and the most retries allowed. It edits the protobuf
// wire format field by field, keeping every field it does not know.
func countAttempt(msg []byte, reason string, now time.Time) (out []byte, retried, retry int, err error) {
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, 0, 0, fmt.Errorf("task message: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, 0, 0, fmt.Errorf("task message field %d: %w", num, protowire.ParseError(m))
		}
		field := b[:n+m]
		b = b[n+m:]
		switch num {
		case msgFieldRetry, msgFieldRetried:
			v, k := protowire.ConsumeVarint(field[n:])
			if typ != protowire.VarintType || k < 0 {
				return nil, 0, 0, fmt.Errorf("task message field %d is not a number", num)
			}
			if num == msgFieldRetry {
				retry = int(int32(v))
				out = append(out, field...)
			} else {
				retried = int(int32(v))
			}
		case msgFieldErrorMsg, msgFieldLastFailedAt:
		default:
			out = append(out, field...)
		}
	}
	retried++
	out = protowire.AppendTag(out, msgFieldRetried, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(retried))
	out = protowire.AppendTag(out, msgFieldErrorMsg, protowire.BytesType)
	out = protowire.AppendString(out, reason)
	out = protowire.AppendTag(out, msgFieldLastFailedAt, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(now.Unix()))
	return out, retried, retry, nil
}
