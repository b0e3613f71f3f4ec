package worker

// This file is the only place that reads or writes Redis keys of Asynq's
// own layout, for the two repairs its public API cannot make after Redis
// lost its data. TestAsynqLayout pins the Asynq version these keys were
// checked against and checks the keys themselves against a real Asynq
// client: an upgrade that changes them fails there, not in production.

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// asynqVersion is the Asynq release the layout below was checked against.
const asynqVersion = "v0.26.0"

// Asynq's keys: the set of queue names asynqmon lists, and a task's hash
// (its message under the field "msg").
const asynqAllQueues = "asynq:queues"

func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

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
