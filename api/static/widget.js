/* "You Might Also Like" widget (no dependencies; docs/widget.md): fills [data-related-slug]
 * boxes with {api}/v1/articles/SLUG/related.html near the viewport without moving the page,
 * and reports impressions and clicks to {api}/v1/events with the list's token and an
 * impression id per box, which draws its arm and exploration (learning.md).
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

  // Until the fragment is in, an empty ::before reserves the box's height: heading (3.8em) and
  // rows, or card rows (16/9 picture + 4.105em, 1em apart). widget.md repeats the first four.
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

  // An option: the element's attribute, else an element's around it, else the script's.
  const option = (element, name) => {
    const holder = element.closest(`[${name}]`) || script;
    return holder && holder.getAttribute(name);
  };

  // The page's slug: data-page-slug, else the canonical URL's last segment.
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
  // The API: the element's data-api, else that of an element around it.
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
  // Whole units counted down ("6 days ago", "1 week ago"), never "yesterday" or "last week".
  const relative = (time, format) => {
    const seconds = (Date.parse(time.dateTime) - Date.now()) / 1000;
    if (!format || Number.isNaN(seconds)) return;
    const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || UNITS[5];
    time.title = time.textContent;
    time.textContent = format.format(Math.trunc(seconds / size), unit);
  };

  // The fallback picture for an item without one or one that fails to load.
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

  // A fresh id per box shown: 32 random hex digits.
  const impressionId = () =>
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");

  // exploration_draw.py's draws from an id: below(n) in 0..n-1.
  const draws = (id) => {
    let state = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) {
      state = Math.imul(state ^ id.charCodeAt(i), 0x01000193);
    }
    const next = () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (t ^ (t >>> 14)) >>> 0;
    };
    return (bound) => {
      const limit = 2 ** 32 - (2 ** 32 % bound);
      let value;
      do value = next();
      while (value >= limit);
      return value % bound;
    };
  };

  // An experiment's arms (holdout first): the id's arm draw picks one.
  const arm = (section, impression) => {
    const arms = section.querySelector("template.related-articles-arms");
    if (!arms) return section;
    let drawn = draws(`arm:${impression}`)(10000);
    const chosen = [section, ...arms.content.querySelectorAll(FRAGMENT)].find(
      (s) => (drawn -= Math.round(s.getAttribute("data-feedback-share") * 10000)) < 0,
    );
    if (!chosen || chosen === section) return section;
    const shown = document.importNode(chosen, true);
    section.replaceWith(shown);
    return shown;
  };

  // Exploring: a free slot trades items with another free slot or a reserve.
  const explore = (section, impression) => {
    const share = Math.round(Number(section.getAttribute("data-feedback-exploration")) * 10000);
    const template = section.querySelector("template.related-articles-reserves");
    if (!(share > 0) || !template) return;
    const pinned = (section.getAttribute("data-feedback-pinned") || "").split(" ");
    const free = [...section.querySelectorAll("li[data-slot]")].filter(
      (item) => !pinned.includes(item.getAttribute("data-slot")),
    );
    const reserves = template.content.querySelectorAll("li[data-slug]");
    if (!free.length || !reserves.length) return;
    const below = draws(impression);
    if (below(10000) >= share) return;
    const k = free.length - 1;
    const a = below(k + 1);
    const p = below(k + reserves.length);
    const other = p < k && free[p < a ? p : p + 1];
    const shown = document.importNode(other || reserves[p - k], true);
    shown.setAttribute("data-slot", free[a].getAttribute("data-slot"));
    if (other) {
      const back = free[a].cloneNode(true);
      back.setAttribute("data-slot", other.getAttribute("data-slot"));
      other.replaceWith(back);
    }
    free[a].replaceWith(shown);
  };

  // Relative dates, pictures, unique heading ids, impressions once seen, clicks.
  const enhance = (found, api, fallback) => {
    if (found.hasAttribute("data-related-tracked")) return;
    const impression = impressionId();
    const section = arm(found, impression);
    section.setAttribute("data-related-tracked", "");
    const source = section.getAttribute("data-related-source");
    const token = section.getAttribute("data-feedback-token");
    explore(section, impression);
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
    url.searchParams.set("explore", "true");
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
        // A shorter box keeps its space rather than move the page, unless below the viewport.
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
