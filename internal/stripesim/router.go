package stripesim

import (
	"net/url"
	"strings"
)

// route is one API endpoint. op is the counter key, e.g.
// "GET /v1/subscriptions/{id}".
type route struct {
	method string
	segs   []string
	op     string
	h      handlerFunc
}

var routes []*route

func addRoute(method, pattern string, h handlerFunc) {
	routes = append(routes, &route{
		method: method,
		segs:   strings.Split(strings.Trim(pattern, "/"), "/"),
		op:     method + " " + pattern,
		h:      h,
	})
}

func init() {
	addRoute("POST", "/v1/customers", hCustomerCreate)
	addRoute("GET", "/v1/customers", hCustomerList)
	addRoute("GET", "/v1/customers/{id}", hCustomerRetrieve)
	addRoute("POST", "/v1/customers/{id}", hCustomerUpdate)

	addRoute("POST", "/v1/products", hProductCreate)
	addRoute("GET", "/v1/products", hProductList)
	addRoute("GET", "/v1/products/{id}", hProductRetrieve)
	addRoute("POST", "/v1/products/{id}", hProductUpdate)

	addRoute("POST", "/v1/prices", hPriceCreate)
	addRoute("GET", "/v1/prices", hPriceList)
	addRoute("GET", "/v1/prices/{id}", hPriceRetrieve)
	addRoute("POST", "/v1/prices/{id}", hPriceUpdate)

	addRoute("POST", "/v1/coupons", hCouponCreate)
	addRoute("GET", "/v1/coupons", hCouponList)
	addRoute("GET", "/v1/coupons/{id}", hCouponRetrieve)
	addRoute("POST", "/v1/coupons/{id}", hCouponUpdate)
	addRoute("DELETE", "/v1/coupons/{id}", hCouponDelete)

	addRoute("POST", "/v1/promotion_codes", hPromoCreate)
	addRoute("GET", "/v1/promotion_codes", hPromoList)
	addRoute("GET", "/v1/promotion_codes/{id}", hPromoRetrieve)
	addRoute("POST", "/v1/promotion_codes/{id}", hPromoUpdate)

	addRoute("POST", "/v1/subscriptions", hSubCreate)
	addRoute("GET", "/v1/subscriptions", hSubList)
	addRoute("GET", "/v1/subscriptions/{id}", hSubRetrieve)
	addRoute("POST", "/v1/subscriptions/{id}", hSubUpdate)
	addRoute("DELETE", "/v1/subscriptions/{id}", hSubCancel)
	addRoute("DELETE", "/v1/subscriptions/{id}/discount", hSubDeleteDiscount)

	addRoute("GET", "/v1/invoices", hInvoiceList)
	addRoute("GET", "/v1/invoices/upcoming", hInvoiceUpcoming)
	addRoute("GET", "/v1/invoices/{id}", hInvoiceRetrieve)
	addRoute("POST", "/v1/invoices/{id}/pay", hInvoicePay)

	addRoute("GET", "/v1/events", hEventList)
	addRoute("GET", "/v1/events/{id}", hEventRetrieve)

	addRoute("POST", "/v1/test_helpers/test_clocks", hClockCreate)
	addRoute("GET", "/v1/test_helpers/test_clocks", hClockList)
	addRoute("GET", "/v1/test_helpers/test_clocks/{id}", hClockRetrieve)
	addRoute("DELETE", "/v1/test_helpers/test_clocks/{id}", hClockDelete)
	addRoute("POST", "/v1/test_helpers/test_clocks/{id}/advance", hClockAdvance)
}

// matchRoute finds the endpoint for a request. Literal segments win over
// {id} (so /v1/invoices/upcoming is not an invoice ID). Path parameters are
// decoded with QueryUnescape, the inverse of stripe-go's FormatURLPath.
func matchRoute(method, escapedPath string) (*route, []string) {
	if method == "HEAD" {
		method = "GET"
	}
	segs := strings.Split(strings.Trim(escapedPath, "/"), "/")
	var best *route
	var bestIDs []string
	bestLiterals := -1
	for _, rt := range routes {
		if rt.method != method || len(rt.segs) != len(segs) {
			continue
		}
		var ids []string
		literals := 0
		ok := true
		for i, ps := range rt.segs {
			if ps == "{id}" {
				v, err := url.QueryUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
					break
				}
				ids = append(ids, v)
				continue
			}
			if ps != segs[i] {
				ok = false
				break
			}
			literals++
		}
		if ok && literals > bestLiterals {
			best, bestIDs, bestLiterals = rt, ids, literals
		}
	}
	return best, bestIDs
}
