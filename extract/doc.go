// Package extract owns crawl link discovery: it finds the links in an HTML page or a CSS file,
// resolves and normalizes them into canonical absolute URLs, and decides, by the crawl's scope
// rules, which of them are worth enqueueing and why the others are not.
//
// It never fetches anything and never imports another trawl package: the scheduler reads a
// saved page from disk, hands it to HTML or CSS, passes each Link through Scope.Decide, and
// enqueues what survives. Parsing is bounded: at most MaxParseBytes of any document is read, so
// a huge or hostile page costs bounded memory and time (its tail is simply not searched).
//
// Two kinds of link come out. A Page link (a, area, iframe, meta refresh, rel=next…) is followed:
// the crawl fetches it and, if it is HTML, parses it in turn. A Requisite (img, srcset, script,
// stylesheet, icon, media, CSS url() and @import) is part of the page that uses it: it is fetched
// even outside the page scope but never followed — except that a stylesheet's own url()s and
// @imports are requisites too, so the caller should pass fetched CSS requisites to CSS.
package extract
