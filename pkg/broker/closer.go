package broker

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

// A Watermill publisher or subscriber built on a connection it does not own
// leaves that connection open on Close; these close it too.

type publisherCloser struct {
	message.Publisher
	after func() error
}

func (p publisherCloser) Close() error {
	return errors.Join(p.Publisher.Close(), p.after())
}

type subscriberCloser struct {
	message.Subscriber
	after func() error
}

func (s subscriberCloser) Close() error {
	return errors.Join(s.Subscriber.Close(), s.after())
}
