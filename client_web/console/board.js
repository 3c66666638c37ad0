/* board screen: to be built. */

import {h, t} from "./core.js";

export const screen = {
  id: "board",
  label: "board.nav",
  strings: {
    "en-US": {"board.nav": "Floor"},
    "zh-CN": {"board.nav": "现场"},
  },
  mount(section) {
    section.append(h("h2", {id: "screen-board-title", "data-i18n": "board.nav"}, t("board.nav")));
  },
  show() {},
};
