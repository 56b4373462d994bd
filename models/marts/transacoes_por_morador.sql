with

moradores as (
    select
        morador_id,
        nome,
        condominio_id
    from {{ ref('stg_moradores') }}
),

totais as (
    select
        morador_id,
        count(*) as qtd_transacoes,
        sum(valor_transacao) as valor_total
    from {{ ref('stg_transacoes') }}
    group by morador_id
)

select
    moradores.morador_id,
    {{ as_varchar('moradores.nome', 255) }} as nome_morador,
    moradores.condominio_id,
    cast(coalesce(totais.qtd_transacoes, 0) as bigint) as qtd_transacoes,
    cast(coalesce(totais.valor_total, 0) as decimal(20, 2)) as valor_total
from moradores
left join totais
    on moradores.morador_id = totais.morador_id
