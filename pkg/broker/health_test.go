package broker

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/config"
)

func TestReadyCheckIsOnlyOfferedForAMQP(t *testing.T) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()

	if _, ok := ReadyCheck(config.Default(), "consumer", pubsub); ok {
		t.Error("ReadyCheck offered a check for a GoChannel pub/sub, which has no broker connection")
	}
}
