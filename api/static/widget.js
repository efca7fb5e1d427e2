/* "You Might Also Like" widget of the related-articles service (no dependencies).
 *
 * Fills each <div data-related-slug="SLUG" data-limit="4" data-heading="..." data-layout="cards">
 * on the page with GET {api}/v1/articles/SLUG/related.html when the box comes near the
 * viewport, and tells POST {api}/v1/events (navigator.sendBeacon) which suggestions were seen
 * and which was clicked, with the list's signed data-feedback-token and an impression id drawn
 * for each box shown; it does the same for fragments already included by the server
 * (ESI/SSI). {api} is where this script was loaded from, or the data-api of the box (or of an
 * element around it) or of the script tag. data-layout: "list" (rows, a small thumbnail when
 * there is an image) or "cards" (a grid of image cards). A box never suggests the page it sits
 * on: its data-page-slug, else the last path segment of <link rel="canonical">, is excluded.
 * Rows and cards have fixed heights, and the box keeps the height of its suggestions from the
 * moment the script runs, so the page does not move when they arrive; on any failure the box
 * is removed, and so is a box whose request has not finished after data-timeout milliseconds
 * (default 3000). Items without a picture have no picture area, or show data-fallback-image,
 * which also stands in for a picture that fails to load. data-page-slug, data-timeout and
 * data-fallback-image are read from the box, else the nearest element around it that has
 * them, else the script tag. Theme it with CSS custom properties: --related-accent,
 * --related-text, --related-muted, --related-bg, --related-border, --related-font,
 * --related-item-height, --related-placeholder, --related-columns.
 */
(() => {
  "use strict";
  const BOX = "[data-related-slug]";
  const FRAGMENT = "section[data-related-source]";
  const SLUG = /^[a-z0-9][a-z0-9-]*$/;
  const LIMIT = /^[1-9][0-9]?$/;
  const MAX_LIMIT = 50;
  const DEFAULT_LIMIT = 4;
  const TIMEOUT = /^[1-9][0-9]{0,5}$/;
  const DEFAULT_TIMEOUT = 3000;
  const C = ".related-articles";
  const I = `${C}-item`;
  const T = `${C}-thumb`;
  const script = document.currentScript;
  let headings = 0;

  // Every row (list) and every card has a height known before its text arrives, so until the
  // fragment is in, an empty ::before reserves exactly that height from the first paint: the
  // heading (3.8em) and the rows, or the card rows (a 16/9 picture of the column's width plus
  // 4.105em of text, 1em apart). Cards sit in --related-columns columns (2, or 4 from 45em).
  // The snippet of docs/widget.md repeats these four rules, so that the page reserves the box
  // before this script arrives (tests/browser/test_widget_safety.py: to the same pixel).
  let css =
    `${BOX}{display:block;--related-c:var(--related-columns,2)}` +
    `@media(min-width:45em){${BOX}{--related-c:var(--related-columns,4)}}` +
    `${BOX}:not([data-related-state=ready])::before{content:"";display:block;padding-top:calc(3.9em + var(--related-rows,${DEFAULT_LIMIT})*var(--related-item-height,4.5em))}` +
    `${BOX}[data-layout=cards]:not([data-related-state=ready])::before{--r:round(up,var(--related-rows,${DEFAULT_LIMIT})/var(--related-c),1);padding-top:calc(2.9em + var(--r)*5.105em + var(--r)*9/16/var(--related-c)*(100% - 2em - (var(--related-c) - 1)*1em))}` +
    `${C}{box-sizing:border-box;margin:0;padding:.8em 1em;border-top:.2em solid var(--related-accent,#b00020);background:var(--related-bg,transparent);color:var(--related-text,inherit);font-family:var(--related-font,inherit)}` +
    `${C} ${C}-heading{margin:0 0 .5em;padding:0;font-size:1.2em;line-height:1.25;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}` +
    `${C} ${C}-list{list-style:none;margin:0;padding:0}` +
    `${C} ${I}{box-sizing:border-box;display:grid;grid-template-columns:minmax(0,1fr);align-content:center;column-gap:.75em;height:var(--related-item-height,4.5em);margin:0;padding:.35em 0;overflow:hidden;border-top:1px solid var(--related-border,#0002)}` +
    `${C} ${C}-with-image{grid-template-columns:5em minmax(0,1fr)}` +
    `${C} ${T}{display:block;box-sizing:border-box;width:5em;height:3.75em;object-fit:cover;border-radius:.2em;background:var(--related-placeholder,#8882);grid-row:1/3}` +
    `${C} ${C}-link{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:2;overflow:hidden;line-height:1.3;max-height:2.6em;font-weight:600;color:var(--related-accent,#b00020);text-decoration:none}` +
    `${C} a${C}-link:hover,${C} a${C}-link:focus{text-decoration:underline}` +
    `${C} ${C}-meta{margin:0;font-size:.85em;line-height:1.3;height:1.3em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:var(--related-muted,#666)}` +
    `${C} ${C}-section+${C}-date:before{content:" · "}` +
    `${C}-cards ${C}-list{display:grid;grid-template-columns:repeat(var(--related-c,2),minmax(0,1fr));gap:1em}` +
    `${C}-cards ${I}{display:block;height:auto;padding:0;border:0}` +
    `${C}-cards ${T}{width:100%;height:auto;aspect-ratio:16/9;margin-bottom:.4em}` +
    `${C}-cards ${C}-link{height:2.6em}`;
  for (let rows = 1; rows <= MAX_LIMIT; rows++) {
    css += `${BOX}[data-limit="${rows}"]{--related-rows:${rows}}`;
  }

  // An option of a box or fragment: its attribute, else an element's around it, else the script's.
  const option = (element, name) => {
    const holder = element.closest(`[${name}]`) || script;
    return holder && holder.getAttribute(name);
  };

  // The slug of the page the boxes sit on: data-page-slug, else the canonical URL's last segment.
  const pageSlug = (box) => {
    const given = option(box, "data-page-slug");
    if (given) return given;
    const canonical = document.querySelector('link[rel="canonical"][href]');
    if (!canonical) return null;
    const path = new URL(canonical.href, location.href).pathname.replace(/\/+$/, "");
    return path.slice(path.lastIndexOf("/") + 1).replace(/\.html?$/, "");
  };

  const apiOf = (element) => {
    const api = element && element.getAttribute("data-api");
    return api ? new URL(api.replace(/\/?$/, "/"), location.href) : null;
  };
  const scriptApi = apiOf(script) || new URL(".", script ? script.src : location.href);
  // The API of a box or fragment: its own data-api, else that of an element around it.
  const apiFor = (element) => apiOf(element.closest("[data-api]")) || scriptApi;

  // Calls `then` once, when `element` is `ratio` visible (`margin` widens the viewport).
  const whenVisible = (element, ratio, margin, then) => {
    if (!window.IntersectionObserver) return then();
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting && e.intersectionRatio >= ratio)) {
          observer.disconnect();
          then();
        }
      },
      { threshold: ratio, rootMargin: margin },
    );
    observer.observe(element);
  };

  const UNITS = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  // One style for every date: whole units counted down ("6 days ago", "1 week ago"), never
  // "yesterday" or "last week", nor 6.6 days rounded up to "7 days ago".
  const relative = (time, format) => {
    const seconds = (Date.parse(time.dateTime) - Date.now()) / 1000;
    if (!format || Number.isNaN(seconds)) return;
    const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || UNITS[5];
    time.title = time.textContent;
    time.textContent = format.format(Math.trunc(seconds / size), unit);
  };

  // The fallback picture, at the same size, for an item without one or one that fails to load.
  const picture = (item, fallback) => {
    if (!fallback) return;
    let image = item.querySelector("img");
    if (!image) {
      image = Object.assign(document.createElement("img"), {
        className: T.slice(1),
        alt: "",
        width: 320,
        height: 180,
        loading: "lazy",
        decoding: "async",
        src: fallback,
      });
      item.prepend(image);
      item.classList.add(`${C.slice(1)}-with-image`);
    }
    const broken = () => {
      if (image.getAttribute("src") !== fallback) image.src = fallback;
    };
    image.addEventListener("error", broken);
    if (image.complete && !image.naturalWidth) broken();
  };

  // A fresh id per box shown (the service counts each impression and click of it once): 16
  // random bytes as 32 hex digits; the same list's token is shared by every reader.
  const impressionId = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");

  // Relative dates, pictures, unique heading ids, impressions once seen, clicks.
  const enhance = (section, api, fallback) => {
    if (section.hasAttribute("data-related-tracked")) return;
    section.setAttribute("data-related-tracked", "");
    const source = section.getAttribute("data-related-source");
    const token = section.getAttribute("data-feedback-token");
    const impression = impressionId();
    const items = [...section.querySelectorAll("li[data-slot]")];
    const event = (type, item) => ({
      type,
      source,
      target: item.getAttribute("data-slug"),
      slot: Number(item.getAttribute("data-slot")),
      token,
      impression,
    });
    const send = (events) => {
      if (navigator.sendBeacon) {
        // A string goes as text/plain: CORS-safelisted, so no preflight (a JSON Blob is refused).
        navigator.sendBeacon(new URL("v1/events", api), JSON.stringify({ events }));
      }
    };
    const heading = section.querySelector("h2[id]");
    if (heading) {
      heading.id += `-${++headings}`;
      section.setAttribute("aria-labelledby", heading.id);
    }
    const format =
      window.Intl && Intl.RelativeTimeFormat
        ? new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, {
            numeric: "always",
          })
        : null;
    section.querySelectorAll("time[datetime]").forEach((time) => relative(time, format));
    items.forEach((item) => picture(item, fallback));
    whenVisible(section, 0.5, "0px", () => send(items.map((item) => event("impression", item))));
    const clicked = (e) => {
      const link = e.target.closest && e.target.closest("a[href]");
      const item = link && link.closest("li[data-slot]");
      if (item && section.contains(item)) send([event("click", item)]);
    };
    section.addEventListener("click", clicked);
    section.addEventListener("auxclick", clicked);
  };

  const layoutOf = (box) => (box.getAttribute("data-layout") === "cards" ? "cards" : "list");
  const rowsOf = (box) => {
    const limit = box.getAttribute("data-limit") || "";
    return LIMIT.test(limit) && Number(limit) <= MAX_LIMIT ? limit : DEFAULT_LIMIT;
  };

  const load = (box) => {
    const slug = box.getAttribute("data-related-slug");
    const heading = box.getAttribute("data-heading");
    const placement = box.getAttribute("data-placement");
    const api = apiFor(box);
    const fail = () => box.remove();
    if (!SLUG.test(slug)) return fail();
    const url = new URL(`v1/articles/${slug}/related.html`, api);
    url.searchParams.set("limit", rowsOf(box));
    url.searchParams.set("layout", layoutOf(box));
    if (heading) url.searchParams.set("heading", heading.slice(0, 100));
    if (placement) url.searchParams.set("placement", placement);
    const page = pageSlug(box);
    if (page && page !== slug && SLUG.test(page)) url.searchParams.set("exclude", page);
    // An API that accepts the connection and never answers must not leave a hole.
    const timeout = option(box, "data-timeout") || "";
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(),
      TIMEOUT.test(timeout) ? Number(timeout) : DEFAULT_TIMEOUT,
    );
    fetch(url, { credentials: "omit", signal: controller.signal })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        clearTimeout(timer);
        const template = document.createElement("template");
        template.innerHTML = html;
        const section = template.content.querySelector(FRAGMENT);
        if (!section) throw new Error("no suggestions");
        // Fewer suggestions than reserved, or cards without pictures, leave the space reserved
        // rather than move the page; not below the viewport, where what moves is not yet seen.
        const { top, height } = box.getBoundingClientRect();
        if (top < innerHeight) box.style.minHeight = `${height}px`;
        box.replaceChildren(section);
        box.setAttribute("data-related-state", "ready");
        enhance(section, api, option(box, "data-fallback-image"));
      })
      .catch(fail);
  };

  const start = () => {
    document.querySelectorAll(FRAGMENT).forEach((section) => {
      enhance(section, apiFor(section), option(section, "data-fallback-image"));
    });
    document.querySelectorAll(`${BOX}:not([data-related-state])`).forEach((box) => {
      box.setAttribute("data-related-state", "loading");
      whenVisible(box, 0, "400px 0px", () => load(box));
    });
  };

  if (!document.getElementById("related-articles-style")) {
    const style = document.createElement("style");
    style.id = "related-articles-style";
    style.textContent = css;
    document.head.appendChild(style);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
