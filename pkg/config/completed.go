package config

import (
	"fmt"
	"net/url"
)

func (c ConsumerConfig) validateCompletedIDs() []error {
	if c.CompletedIDsURL == "" {
		return nil
	}
	u, err := url.Parse(c.CompletedIDsURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return []error{fmt.Errorf("consumer.completed_ids_url: must be empty or a redis:// or rediss:// URL with a host")}
	}

	return nil
}
