#!/usr/bin/env python3
"""Counts import circles: `crate::` cycles between the top-level modules of each
crate under crates/ (test modules excluded). Usage: bench/import_circles.py [ROOT]"""
import os,re,sys
root=sys.argv[1] if len(sys.argv) > 1 else "."
def mods(crate):
    src=os.path.join(crate,'src'); out={}
    for dp,_,fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(dp,f); rel=os.path.relpath(p,src)[:-3]
            parts=rel.split(os.sep)
            if parts[-1] in('mod','lib','main'): parts=parts[:-1]
            top=parts[0] if parts else '(root)'
            txt=open(p).read()
            txt=txt.split('#[cfg(test)]')[0]
            refs=set(re.findall(r'crate::([a-z_]+)',txt))
            # super:: from a submodule refers to its parent: same top module
            if len(parts)==1:
                refs|=set(re.findall(r'super::([a-z_]+)::',txt))
            out.setdefault(top,set()).update(r for r in refs if r!=top)
    return out
total=0
for d in sorted(os.listdir(os.path.join(root,'crates'))):
    g=mods(os.path.join(root,'crates',d))
    names=set(g)
    g={k:{v for v in vs if v in names} for k,vs in g.items()}
    # find 2-cycles and longer via DFS
    cyc=set()
    def dfs(n,stack):
        for m in g.get(n,()):
            if m in stack:
                c=stack[stack.index(m):]
                cyc.add(tuple(sorted(c)))
            elif len(stack)<6:
                dfs(m,stack+[m])
    for n in g: dfs(n,[n])
    if cyc:
        print(d, sorted(cyc)); total+=len(cyc)
print('cycles:',total)
