package httprule_test

import (
	"fmt"
	"net/url"

	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/gateway/internal/httprule"
)

func Example() {
	r := httprule.NewRouter[string]()
	for _, rt := range []struct{ method, template, rpc string }{
		{"GET", "/v1/users/{id}", "user.v1.UserService/GetUser"},
		{"PATCH", "/v1/users/{id}", "user.v1.UserService/UpdateUser"},
		{"GET", "/v1/users", "user.v1.UserService/ListUsers"},
	} {
		t, err := httprule.ParseTemplate(rt.template)
		if err != nil {
			panic(err)
		}
		if err := r.Add(rt.method, t, rt.rpc); err != nil {
			panic(err)
		}
	}

	rpc, bindings, _, ok := r.Lookup("GET", "/v1/users/ada%20l")
	fmt.Println(rpc, bindings, ok)

	req := &userv1.GetUserRequest{}
	for _, b := range bindings {
		if err := httprule.SetField(req.ProtoReflect(), b.Field, b.Value); err != nil {
			panic(err)
		}
	}
	fmt.Printf("%q\n", req.GetId())

	_, _, allowed, ok := r.Lookup("DELETE", "/v1/users/ada")
	fmt.Println(allowed, ok)

	list := &userv1.ListUsersRequest{}
	err := httprule.SetQuery(list.ProtoReflect(), url.Values{"pageSize": {"ten"}}, nil)
	fmt.Println(err)
	// Output:
	// user.v1.UserService/GetUser [{id ada l}] true
	// "ada l"
	// [GET PATCH] false
	// field "pageSize": invalid value "ten" for int32
}
