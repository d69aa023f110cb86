package exception

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Credentials is the credential population the KPIs are relative to: live
// credentials in all and by site.
type Credentials struct {
	Total  int
	BySite map[string]int
}

// Group is one slice of the KPIs.
type Group struct {
	Key         string  `json:"key"`
	Count       int     `json:"count"`
	Credentials int     `json:"credentials,omitempty"`
	Per1000     float64 `json:"per_1000_credentials"`
}

// Age is how long the open exceptions have been in place.
type Age struct {
	MeanDays   float64 `json:"mean_days"`
	MedianDays float64 `json:"median_days"`
	MaxDays    float64 `json:"max_days"`
	OldestID   string  `json:"oldest_id,omitempty"`
}

// KPIs are the register's figures at a moment. Open counts exceptions not
// closed that have started (active, expiring and expired ones): what the
// fleet lives with.
type KPIs struct {
	AsOfMs        int64         `json:"as_of_ms"`
	Credentials   int           `json:"credentials"`
	Open          int           `json:"open"`
	Per1000       float64       `json:"per_1000_credentials"`
	ByState       map[State]int `json:"by_state"`
	ByKind        map[Kind]int  `json:"by_kind"`
	ByReason      []Group       `json:"by_reason"`
	BySite        []Group       `json:"by_site"`
	Age           Age           `json:"age"`
	ReviewOverdue int           `json:"review_overdue"`
}

// NoSite is the by-site key of exceptions whose scope names no site.
const NoSite = "(no site)"

// ComputeKPIs returns the KPIs of recs at now.
func ComputeKPIs(recs []Record, creds Credentials, now int64, warn time.Duration) KPIs {
	k := KPIs{AsOfMs: now, Credentials: creds.Total, ByState: map[State]int{}, ByKind: map[Kind]int{},
		ByReason: []Group{}, BySite: []Group{}}
	for _, s := range States {
		k.ByState[s] = 0
	}
	for _, kd := range Kinds {
		k.ByKind[kd] = 0
	}
	reasons, sites := map[string]int{}, map[string]int{}
	var ages []float64
	oldest := int64(math.MaxInt64)
	for _, r := range recs {
		st := r.StateAt(now, warn)
		k.ByState[st]++
		if st == StateClosed || st == StatePending {
			continue
		}
		k.Open++
		k.ByKind[r.Kind]++
		reasons[r.Reason]++
		site := r.Scope.SiteID
		if site == "" {
			site = NoSite
		}
		sites[site]++
		ages = append(ages, float64(now-r.StartMs)/float64(24*time.Hour/time.Millisecond))
		if r.StartMs < oldest || (r.StartMs == oldest && r.ID < k.Age.OldestID) {
			oldest, k.Age.OldestID = r.StartMs, r.ID
		}
		if r.ReviewAt() <= now {
			k.ReviewOverdue++
		}
	}
	k.Per1000 = per1000(k.Open, creds.Total)
	for reason, n := range reasons {
		k.ByReason = append(k.ByReason, Group{Key: reason, Count: n, Per1000: per1000(n, creds.Total)})
	}
	for site, n := range sites {
		c := creds.Total
		if site != NoSite {
			c = creds.BySite[site]
		}
		k.BySite = append(k.BySite, Group{Key: site, Count: n, Credentials: c, Per1000: per1000(n, c)})
	}
	byCount := func(a, b Group) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key)) }
	slices.SortFunc(k.ByReason, byCount)
	slices.SortFunc(k.BySite, byCount)
	if len(ages) > 0 {
		slices.Sort(ages)
		sum := 0.0
		for _, a := range ages {
			sum += a
		}
		k.Age.MeanDays = round1(sum / float64(len(ages)))
		k.Age.MaxDays = round1(ages[len(ages)-1])
		m := len(ages) / 2
		if len(ages)%2 == 1 {
			k.Age.MedianDays = round1(ages[m])
		} else {
			k.Age.MedianDays = round1((ages[m-1] + ages[m]) / 2)
		}
	}
	return k
}

// per1000 is n per 1,000 credentials (0 when there are none: a rate of a
// population that does not exist is not a number to chart).
func per1000(n, creds int) float64 {
	if creds <= 0 {
		return 0
	}
	return math.Round(float64(n)*1000/float64(creds)*100) / 100
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
