package promo

import (
	"context"
	"testing"
)

// ActorFrom reads the actor whichever way it was attached.
func TestActorFrom(t *testing.T) {
	a := Actor{APIKey: "checkout", RequestID: "req_1"}
	if got := ActorFrom(WithActor(context.Background(), a)); got != a {
		t.Errorf("WithActor: %+v, want %+v", got, a)
	}
	if got := ActorFrom(WithActorOf(context.Background(), &a)); got != a {
		t.Errorf("WithActorOf: %+v, want %+v", got, a)
	}
	if got := ActorFrom(context.Background()); got != (Actor{}) {
		t.Errorf("no actor: %+v", got)
	}
}
